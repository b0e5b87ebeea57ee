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


@dataclass(frozen=True)
class IngestSettings:
    format: str = "auto"
    mapping: dict[str, str] = field(default_factory=dict)
    time_unit: str = "auto"  # s | ms | us | ns | datetime | auto
    max_decompress_ratio: float = 200.0  # a compressed input may expand at most this much

    def to_dict(self) -> dict:
        return {"format": self.format, "mapping": dict(sorted(self.mapping.items())),
                "time_unit": self.time_unit}


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


@dataclass(frozen=True)
class FitSettings:
    """The bundle fit's: its length window, client cap, KS sample and PMF binning."""
    dataset_window_s: int = 21_600  # 6 h, ServeGen's length-distribution window (rounded to whole windows)
    max_clients: int = 256  # beyond this, the smallest clients are merged into one "(other)" group
    ks_sample: int = 20_000  # a client's first inter-arrivals, for the KS distance
    pmf_exact_below: int = 128  # lengths below this keep their own PMF bin ...
    pmf_log_step: float = 0.02  # ... longer ones share bins this wide in log10

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
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


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
    min_window_cover: float = 0.5  # rate windows covered less than this fraction by both traces are left out

    def to_dict(self) -> dict:
        return asdict(self)


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
