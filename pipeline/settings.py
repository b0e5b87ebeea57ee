"""Every setting and threshold in one typed tree, with its documented default.

The tree has six branches, one per stage of the pipeline:

- `ingest`: `IngestSettings` (how a raw trace is read),
- `stages`: `StageSettings` (the characterization's thresholds), inside `Settings`,
- `fit`: `FitSettings` (the bundle fit's), inside `Settings`,
- `generate`: `GenerateOptions`, `fidelity`: `FidelitySettings`, `provision`: `ServingModel`.

`Settings` is what `characterize` and `fit` run with (window, grouping, seed, ...) and holds the
stages' and the fit's branches. `record` is the one dictionary findings.json and bundle.json both
store, whole: the same input and settings give the same record in both. `tree()` is every
default, the documentation of record (README "Settings")."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from servetrace.errors import ServetraceError

ROUTINGS = ("round_robin", "random")
METRICS = ("ttft", "e2e")


def plain(value):
    """A settings value as JSON would hold it: dataclasses as dicts, tuples as lists."""
    if hasattr(value, "__dataclass_fields__"):
        return {k: plain(getattr(value, k)) for k in value.__dataclass_fields__}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class OutlierSettings:
    """Outlying arrivals (ingest/outliers.py): rows at either end of the trace beyond a gap longer
    than both `gap_spans` x the span of the rest and `gap_floor_s`, at most `share` of the rows (or
    `few`) on their side; no rows are judged in traces of fewer than `min_rest` + those rows."""
    gap_spans: float = 10.0
    gap_floor_s: float = 86_400.0
    share: float = 0.001
    few: int = 3  # so many rows may be outlying whatever the share
    min_rest: int = 500  # fewer rows than this: no scale to judge a gap by (a small trace's pause is data)


@dataclass(frozen=True)
class IngestSettings:
    format: str = "auto"
    mapping: dict[str, str] = field(default_factory=dict)
    time_unit: str = "auto"  # s | ms | us | ns | datetime | auto
    max_decompress_ratio: float = 200.0  # a compressed input may expand at most this much
    outliers: OutlierSettings = OutlierSettings()

    def to_dict(self) -> dict:
        return {"format": self.format, "mapping": dict(sorted(self.mapping.items())),
                "time_unit": self.time_unit, "outliers": plain(self.outliers)}


@dataclass(frozen=True)
class ReuseSettings:
    """The block reuse analysis (reuse/): stack distances, the prefix tree, re-blocked curves."""
    exact_max: int = 2_000_000  # block references: exact stack distances up to this many, SHARDS above
    sampled_target: int = 1_000_000  # SHARDS keeps about this many references
    tree_max: int = 10_000_000  # references: numpy's tree, groups and inferred sessions read every one (Spark: SQL, any size)
    coarser_blocks: tuple[int, ...] = (64, 512, 2048)  # re-blocked sizes, where the source's block size divides them
    distance_sample: int = 20_000  # finite reuse distances kept (seeded sample) for the KS comparisons


@dataclass(frozen=True)
class StageSettings:
    """The characterization's decisions: when a fit fits, when a period changed, what a peak is."""
    ks_fits: float = 0.05  # a family whose KS distance to the data exceeds this does not fit
    bic_margin: float = 2.0  # BIC differences up to this are "not worth more than a bare mention" (Kass & Raftery)
    drift_ks: float = 0.1  # a period whose KS distance to the previous one exceeds this has changed ...
    drift_alpha: float = 0.001  # ... and beyond the two-sample KS critical value at this level
    peak_prominence: float = 0.25  # a histogram peak rises this share of the highest bin above its surroundings
    bimodal_delta_bic: float = 10.0  # two Gaussians beat one by this much BIC ("very strong") ...
    bimodal_ashman_d: float = 2.0  # ... their means are separated (Ashman's D > 2: a clean split) ...
    bimodal_min_weight: float = 0.05  # ... and the smaller one holds at least this share
    grid_share: float = 0.9  # share of arrivals on a grid above which timestamps count as rounded to it
    deround_from_s: float = 0.01  # grids this coarse or coarser bias inter-arrival statistics: de-round
    ramp_fraction: float = 0.25  # a head of windows below this share of the median window rate is a ramp-up
    min_fit_gaps: int = 10  # fewer positive gaps than this: no inter-arrival family fit
    min_window_gaps: int = 20  # per-window fits need at least this many positive gaps in the window
    per_window_n: int = 500  # per-window family fits: at most this many gaps per window (seeded sample)
    grid_rows: int = 1_000_000  # rows the timestamp grid is judged on, at most (every k-th row)
    iat_bins_per_decade: int = 10  # inter-arrival histogram resolution
    min_length_fit: int = 10  # fewer positive values than this: no length family fit
    min_drift_rows: int = 30  # periods with fewer rows take no part in length drift
    min_reason_rows: int = 50  # fewer sampled rows with reasoning tokens: no reasoning finding
    reason_log_bins: int = 40  # bins of the reasoning mixture table
    min_series: int = 8  # fewer rate bins than this: no periodicity finding
    lorenz_points: int = 1000  # points of the clients' Lorenz curve
    failure_runs: int = 120  # the failure share over time: windows pooled into at most this many runs
    top_prefix_groups: int = 50  # prefix groups kept in the table
    top_gaps: int = 10  # longest gaps between arrivals kept (quality)
    rounded_exact_below: int = 10  # gaps of fewer grid steps than this use the exact rounded-grid probability
    drift_bins_per_decade: int = 50  # resolution of the length drift histograms
    max_groups: int = 1000  # groups (clients) in the clients table, largest first
    max_groups_detail: int = 20  # largest groups with their own length quantiles and failure rates
    reuse: ReuseSettings = ReuseSettings()


@dataclass(frozen=True)
class ModulationSettings:
    """The Cox model's rate modulation (bundle/modulation.py)."""
    theta_s: tuple[float, ...] = (1.0, 8.0, 60.0, 400.0)  # OU time scales (s) of the components
    bin_s: float = 0.25  # resolution of the counts the fit reads, and of the modulation in generation
    tau_s: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)  # bin sizes fitted
    min_sigma2: float = 1e-3  # a component below this variance is dropped


@dataclass(frozen=True)
class ArrivalModelSettings:
    """The choice of arrival model (bundle/arrival_model.py)."""
    candidates: tuple[str, ...] = ("renewal", "cox", "cox-renewal")
    scales_s: tuple[float, ...] = (1.0, 10.0, 60.0, 600.0)  # IDC scales the candidates are scored at
    seeds: tuple[int, ...] = (101, 102)  # each candidate is generated with these seeds
    max_rows: int = 1_000_000  # the source's first rows the candidates are compared with
    min_bins: int = 30  # a scale scores only with this many whole bins
    max_modulation_windows: int = 4096  # windows of bin_s counts the modulation fit reads (~80 MB)
    dominant_share: float = 0.1  # a client with this share of the requests ...
    dominant_requests: int = 2_000  # ... and this many gets a modulation of its own (ServeGen: clients differ)
    max_dominant: int = 8  # at most this many clients get their own
    modulation: ModulationSettings = ModulationSettings()


@dataclass(frozen=True)
class SessionModelSettings:
    """The bundle's session and prefix models (bundle/sessions.py)."""
    max_groups: int = 200  # prefix groups kept, most popular first
    session_rows: int = 2_000_000  # past this many requests, whole sessions are sampled by a hash
    class_min: int = 25  # sessions per class of turns
    cell_min: int = 10  # sessions per class and grouped / not, else the class's pooled prompts
    client_min: int = 50  # sessions a client needs for a prefix model of its own, else the pooled one
    client_session_min: int = 200  # sessions a client needs for a session model of its own
    client_models: int = 16  # at most this many clients (most sessions first) get their own session model
    quantile_points: int = 101  # quantiles kept per distribution (0, 1 %, ..., 100 %)
    by_turns_min: int = 100  # fewer sessions than this: no model by class of turns
    start_bins: int = 5  # bins of sessions.start_share to a rate window (120 s at 600 s windows) ...
    start_bin_requests: int = 400  # ... or longer, to hold this many requests at the mean rate


@dataclass(frozen=True)
class AgentModelSettings:
    """The bundle's agent model (bundle/agents.py)."""
    min_calls: int = 2  # fewer main calls with turns than this: no agent model
    min_start_gaps: int = 10  # fewer gaps between session starts inside a window: no session CV (Poisson starts)
    quantile_points: int = 101  # quantiles kept per distribution (0, 1 %, ..., 100 %)


@dataclass(frozen=True)
class FitSettings:
    """The bundle fit's: its length window, client cap, KS sample and PMF binning."""
    dataset_window_s: int = 21_600  # 6 h, ServeGen's length-distribution window (rounded to whole windows)
    max_clients: int = 256  # beyond this, the smallest clients are merged into one "(other)" group
    ks_sample: int = 20_000  # a client's first inter-arrivals, for the KS distance
    pmf_exact_below: int = 128  # lengths below this keep their own PMF bin ...
    pmf_log_step: float = 0.02  # ... longer ones share bins this wide in log10

    arrival_model: ArrivalModelSettings = ArrivalModelSettings()
    sessions: SessionModelSettings = SessionModelSettings()
    agents: AgentModelSettings = AgentModelSettings()

    def binning(self) -> dict:
        return {"exact_below": self.pmf_exact_below, "log_step": self.pmf_log_step}


@dataclass(frozen=True)
class Settings:
    """A characterize / fit run."""
    window_s: int = 600
    idc_scales_s: tuple[int, ...] = (1, 10, 60, 600)
    group_by: str | None = None  # None: client_id when present, else the best available grouping
    top_k: tuple[int, ...] = (1, 5, 10)
    # Fits on at most this many samples (drawn with a fixed seed) where a full-data MLE adds no accuracy.
    fit_sample: int = 200_000
    seed: int = 0
    memory_limit: str | None = None  # passed to DuckDB, e.g. "4GB"
    threads: int | None = None
    stages: StageSettings = StageSettings()
    fit: FitSettings = FitSettings()

    def to_dict(self) -> dict:
        return plain(self)


def record(settings: Settings, group_by: str | None, ingest: dict | None) -> dict:
    """The settings findings.json and bundle.json store: the run's, with the grouping it chose and
    the ingest settings of its request table; not how it was resourced (memory, threads), which
    does not change a number."""
    out = {**settings.to_dict(), "group_by": group_by}
    for key in ("memory_limit", "threads"):
        out.pop(key)
    return {**out, "ingest": ingest}


def ingest_of(meta: dict) -> dict | None:
    """The ingest settings a request table was written with (its Parquet metadata)."""
    text = meta.get("servetrace.ingest_settings")
    return json.loads(text) if text else None


@dataclass(frozen=True)
class GenerateOptions:
    start_s: float | None = None  # default: the source's first arrival (`covered`), else the first window start
    duration_s: float | None = None  # default: to the source's last arrival, else the bundle's span
    rate_scale: float | None = None  # multiply every client's rate
    rate_rps: float | None = None  # or: scale so the mean aggregate rate is this
    rate_fn: tuple[tuple[float, float], ...] | None = None  # or: (window start s, aggregate rps), ascending
    time_scale: float | None = None  # then: seconds after the start x this (2 = twice as slow)
    clients: str | None = None  # "top:N" or comma-separated client ids
    seed: int = 0
    sessions: bool = True  # run the bundle's session model (v2) when it has one
    block_size: int | None = None  # hash_ids block size (default: the source's)

    def __post_init__(self) -> None:
        given = [x is not None for x in (self.rate_scale, self.rate_rps, self.rate_fn)]
        if sum(given) > 1:
            raise ServetraceError("give at most one of --rate-scale, --rate, --rate-fn")
        if self.block_size is not None and not self.block_size >= 1:
            raise ServetraceError(f"--block-size {self.block_size}: must be >= 1 token")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ServetraceError(f"--duration {self.duration_s}: must be > 0")
        for name, v in (("--rate-scale", self.rate_scale), ("--rate", self.rate_rps)):
            if v is not None and not (v >= 0 and np.isfinite(v)):
                raise ServetraceError(f"{name} {v}: must be a finite number >= 0")
        if self.time_scale is not None and not (self.time_scale > 0 and np.isfinite(self.time_scale)):
            raise ServetraceError(f"--time-scale {self.time_scale}: must be a finite number > 0")
        if self.rate_fn is not None:
            starts = np.array([s for s, _ in self.rate_fn], dtype=float)
            rates = np.array([r for _, r in self.rate_fn], dtype=float)
            if len(starts) == 0 or (np.diff(starts) <= 0).any() or (rates < 0).any() or not np.isfinite(rates).all():
                raise ServetraceError("--rate-fn: needs ascending window starts and finite rates >= 0")

    def to_dict(self) -> dict:
        return {"start_s": self.start_s, "duration_s": self.duration_s, "rate_scale": self.rate_scale,
                "time_scale": self.time_scale, "rate_rps": self.rate_rps,
                "rate_fn_windows": len(self.rate_fn) if self.rate_fn else None,
                "clients": self.clients, "seed": self.seed, "sessions": self.sessions, "block_size": self.block_size}


@dataclass(frozen=True)
class FidelitySettings:
    """Pass / fail thresholds of the fidelity checks."""
    rate_mape: float = 0.05  # mean absolute percentage error of the per-window rate
    iat_cv_rel: float = 0.10  # |CV_syn - CV_src| / CV_src
    idc_rel: float = 0.20  # per scale, |IDC_syn - IDC_src| / IDC_src
    ks: float = 0.03  # per length field
    spearman_abs: float = 0.05  # |rho_syn - rho_src|
    top_share_k: int = 5
    top_share_abs: float = 0.02
    failure_rate_abs: float = 0.01
    infinite_hit_abs: float = 0.03  # |infinite-cache hit rate, synthetic - source|
    lru_curve_abs: float = 0.05  # largest |hit rate difference| over the source's capacity ladder
    reuse_ks: float = 0.05  # reuse distance, turns per session, turn gap, follow-up context length
    agent_ks: float = 0.05  # agent traces: calls per turn / session, gaps, context growth, outputs per kind
    agent_share_abs: float = 0.03  # |difference| of the cached share, subagent share of calls, spawning turns
    agent_fanout_abs: float = 0.2  # |difference| of the mean subagents per spawning turn
    agent_model_tv: float = 0.05  # total variation distance of the mix of models by call kind
    agent_sample: int = 200_000  # values per agent distribution compared, at most (a hash sample of the calls)
    min_window_cover: float = 0.5  # rate windows covered less than this fraction by both traces are left out
    floor_seeds: tuple[int, ...] = (1_000_001, 1_000_002, 1_000_003)  # the seed-to-seed noise floor's workloads

    def to_dict(self) -> dict:
        return plain(self)


@dataclass(frozen=True)
class ServingModel:
    """The provisioning experiment's serving model and latency target (provision/model.py)."""
    prefill_s_per_token: float = 2.5e-4  # 4,000 prompt tokens/s per server
    decode_s_per_token: float = 0.03  # one decode step: 33 tokens/s per request
    batch: int = 16  # requests sharing a decode step
    overhead_s: float = 0.0  # fixed cost per request (scheduling, tokenization)
    routing: str = "round_robin"
    metric: str = "ttft"  # ttft | e2e
    quantile: float = 0.99
    target_s: float = 2.0
    max_servers: int = 100_000
    seed: int = 0  # random routing

    def __post_init__(self) -> None:
        if self.routing not in ROUTINGS:
            raise ServetraceError(f"routing {self.routing!r}: expected one of {', '.join(ROUTINGS)}")
        if self.metric not in METRICS:
            raise ServetraceError(f"latency metric {self.metric!r}: expected one of {', '.join(METRICS)}")
        if not 0 < self.quantile <= 1:
            raise ServetraceError(f"quantile {self.quantile}: expected 0 < q <= 1")
        if min(self.prefill_s_per_token, self.decode_s_per_token, self.overhead_s) < 0 or self.batch < 1:
            raise ServetraceError("serving model: costs must be >= 0 and batch >= 1")
        if self.target_s <= 0 or self.max_servers < 1:
            raise ServetraceError("serving model: target_s must be > 0 and max_servers >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULTS = Settings()


def tree() -> dict:
    """Every branch of the settings tree with its defaults."""
    run = DEFAULTS.to_dict()
    return {"ingest": {**IngestSettings().to_dict(), "max_decompress_ratio": IngestSettings().max_decompress_ratio},
            "stages": run.pop("stages"), "fit": run.pop("fit"), "run": run,
            "generate": GenerateOptions().to_dict(), "fidelity": FidelitySettings().to_dict(),
            "provision": ServingModel().to_dict()}
