"""Fit a bundle from a canonical request table (DIR/requests.parquet) and write DIR/bundle.json.

The table is read in batches of rows in arrival order (`pipeline/rows/`): the clients come from
the grouping columns' codes (read once from the Parquet dictionaries), a pass for the per-group
sums (`bundle/sums.py`: inter-arrival moments, failures, value counts; rows and covered span) and
a pass for the sums that need the first pass's results (`bundle/ranks.py`: Weibull likelihoods,
Spearman numerators), so memory does not grow with the rows. In `characterize` the first pass
rides on the stages' row stream (`Fit`), so the rows are read twice, not five times.
`bundle_from_requests` is pure (a DataFrame in, a bundle dict out); `fit_bundle` and
`write_bundle` are the file edges `servetrace fit` and `servetrace characterize` call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from servetrace import grouping, io
from servetrace.bundle import arrivals, lengths, sums
from servetrace.bundle.agents import fit_agent_model
from servetrace.bundle.arrival_model import bin_counter, with_arrival_model, with_start_arrival_model
from servetrace.bundle.bin_counts import BinCounts
from servetrace.bundle.ranks import CrossRanks, Powers, midranks, spearman
from servetrace.bundle.session_sql import client_names, start_arrival_model_on
from servetrace.bundle.sessions import ANALYZE, analyzed, client_index, fit_reuse_models
from servetrace.bundle.model import CATEGORY_FIELDS, SCHEMA_ID, safe_client_id, save_bundle
from servetrace.errors import ServetraceError
from servetrace.grouping import Grouping
from servetrace.rows import read
from servetrace.rows.codes import Codes, frame_group_codes, group_codes
from servetrace.rows.moments import moments
from servetrace.outputs import BUNDLE, REQUESTS
from servetrace.settings import Settings, ingest_of, record
from servetrace.stages.context import check_span
from servetrace.stats import clock
from servetrace.stats.pmf import pmf_fit

OTHER = "(other)"  # the clients past settings.fit.max_clients, merged


def choose_grouping(batches: read.Batches, columns: list[str], group_by: str | None) -> Grouping:
    """What a client is (pipeline/grouping.py): the setting, else the default, judged on the rows."""
    chosen = grouping.choose(group_by, lambda c: c in columns and read.present(batches, c),
                             lambda c: c in columns and read.varies(batches, c))
    missing = [c for c in chosen.columns if c not in columns]
    if missing:
        raise ServetraceError(f"--group-by {chosen.name!r}: no column {missing[0]!r} in the request table")
    return chosen


@dataclass
class Aggregates:
    """What a bundle is assembled from; clients are integer indices into `names` (sorted)."""
    names: list[str]
    group_name: str
    category: str
    rows: int
    t0: float
    t1: float
    per_window: pl.DataFrame  # client, window_start_s, requests, rate_rps, cv, family, shape, scale, failed
    per_client: pl.DataFrame  # client, requests, rate_rps, cv, family, shape, scale, failed
    overall: pl.DataFrame  # window_start_s, rate_rps, cv (every row as one client)
    ks: dict  # client -> its first settings.fit.ks_sample inter-arrivals
    nonzero: bool  # some failed request has an output
    counts: dict  # field -> (client, dataset_start_s, field, n) over requests that did not fail
    joint: pl.DataFrame  # client, rho:a:b, corr:a:b


class Fit:
    """A bundle fit once the grouping, first arrival and category are known: its first pass's
    consumers (fed by `fit_batches`, or by characterize's one row stream), then `finish`: the
    second pass and the bundle."""

    def __init__(self, columns: list[str], settings: Settings, source: dict, by: Grouping, groups: Codes, t0: float,
                 category: str, ingest: dict | None = None, clock_s: float | None = None):
        window_s = int(settings.window_s)
        self.settings, self.source, self.by, self.t0, self.category = settings, source, by, t0, category
        self.binning, self.ingest = settings.fit.binning(), ingest
        self.dataset_window_s = dataset_window(settings)
        # on a coarse clock (BurstGPT: whole seconds) the CVs are the process's under it (bundle/arrivals.py)
        self.grid = sums.Grid(grid_start(t0, window_s), window_s, self.dataset_window_s, clock_s)
        self.clients = sums.Clients(groups, settings.fit.max_clients, OTHER)
        self.inputs = [c for c in lengths.LENGTH_INPUTS if c in columns]
        self.sums = sums.ArrivalSums(len(self.clients.names), self.grid, settings.fit.ks_sample)
        self.counts = sums.LengthCounts(self.grid, category)
        self.count_bins = False  # set: the second pass also counts the arrival model's bins (characterize)
        self.counted: BinCounts | None = None

    @property
    def read(self) -> list[str]:
        """The columns the passes read."""
        return ["arrival_s", *self.inputs]

    def reader(self, batches) -> sums.RowReader:
        return sums.RowReader(batches, self.inputs, self.clients, self.grid)

    def first_pass(self, batches) -> None:
        reader = self.reader(batches)
        read.run(reader, self.sums, self.counts)
        self.rows, self.t1 = reader.rows, reader.last

    def finish(self, batches: read.Batches) -> dict:
        """The second pass over `batches` (Weibull sums, Spearman numerators) and the bundle."""
        window_s, t0, t1, k = int(self.settings.window_s), self.t0, self.t1, len(self.clients.names)
        first, counts = self.sums.result(), self.counts.result()
        per_window, per_client, overall = first_fits(first, window_s, t0, t1, self.grid.clock_s)
        jnames = lengths.joint_fields(self.category)
        ranks = {n: midranks(counts[n], n) for n in jnames}
        powers, cross = Powers(k, self.grid, per_window, per_client), CrossRanks(k, self.category, ranks)
        bins = [bin_counter(self.clients.names, per_client, self.rows, float(self.grid.g0),
                            self.settings.fit.arrival_model)] if self.count_bins else []
        read.run(self.reader(batches(self.read)), powers, cross, *bins)
        (pw_power, pc_power), cross = powers.result(), cross.result()
        self.counted = bins[0].result() if bins else None
        agg = Aggregates(self.clients.names, self.by.name, self.category, self.rows, t0, t1,
                         with_power(per_window, pw_power, ["client", "window_start_s"]),
                         with_power(per_client, pc_power, ["client"]), overall, first["ks"], first["nonzero"],
                         pmf_counts(counts), spearman(ranks, cross, jnames))
        return assemble(agg, self.settings, self.source, self.dataset_window_s, self.binning, self.ingest)


def grid_start(t0: float, window_s: int) -> int:
    """The fit's windows start at multiples of the window: the first at or before the first arrival."""
    return int(np.floor(t0 / window_s) * window_s)


def dataset_window(settings: Settings) -> int:
    """The length distributions' window: the setting rounded to whole analysis windows."""
    window_s = int(settings.window_s)
    return max(window_s, int(round(settings.fit.dataset_window_s / window_s)) * window_s)


def first_fits(first: dict, window_s: int, t0: float, t1: float,
               clock_s: float | None = None) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The moment-matched fits of the first pass's sums (per_window, per_client, overall frames of
    SUMS): per (client, window), per client and per window of all rows; on a coarse `clock_s`, the
    process's CVs under the clock (bundle/arrivals.py `clock_cv`)."""
    covered = arrivals.covered_seconds(pl.col("window_start_s"), window_s, t0, t1)
    return (arrivals.moment_fits(moments(first["per_window"]), covered, clock_s),
            arrivals.moment_fits(moments(first["per_client"]), max(t1 - t0, arrivals.MIN_COVER_S), clock_s),
            arrivals.moment_fits(moments(first["overall"]), covered, clock_s))


def pmf_counts(counts: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """Value counts (client, dataset_start_s, field, n) per field, joint or not, as the PMFs take them."""
    return {n: lengths.with_image_default(f.group_by("client", "dataset_start_s", n).agg(pl.col("n").sum()), n)
            for n, f in counts.items()}


def category_of(batches: read.Batches, columns: list[str]) -> str:
    """reason when some request has reasoning tokens, else multimodal when one has images, else language."""
    def positive(c: str) -> bool:
        return c in columns and any(bool((pl.Series(read.column(b, c)) > 0).any()) for b in batches([c]))

    return "reason" if positive("reason_tokens") else "multimodal" if positive("image_count") else "language"


def fit_batches(batches: read.Batches, columns: list[str], settings: Settings, source: dict,
                groups_of: Callable[[Grouping], Codes], ingest: dict | None = None) -> dict:
    """The bundle of a table given as batches of rows in arrival order (read.Unsorted if not);
    `groups_of(grouping)`: the group codes of its rows."""
    chosen = choose_grouping(batches, columns, settings.group_by)
    t0 = read.first_arrival(batches)
    if t0 is None:
        raise ServetraceError(f"{source.get('path')}: no requests to fit")
    fit = Fit(columns, settings, source, chosen, groups_of(chosen), t0, category_of(batches, columns), ingest,
              clock.clock_of_batches(batches, settings))
    fit.first_pass(batches(fit.read))
    return fit.finish(batches)


def with_power(fits: pl.DataFrame, power: pl.DataFrame | None, keys: list[str]) -> pl.DataFrame:
    """The fits with the Weibull power sums of the second pass, and the family each chooses."""
    power = power if power is not None else pl.DataFrame(schema={**fits.select(keys).schema, "sum_wpow": pl.Float64})
    return arrivals.choose_family(fits.join(power, on=keys, how="left"))


def failure_rates(agg: Aggregates) -> dict | None:
    """Failed requests' share per client, per (client, window) and overall, and whether the source
    marks a failure by a zero output (BurstGPT, generic traces); None when nothing failed."""
    failed = int(agg.per_client["failed"].sum())
    if failed == 0:
        return None
    share = pl.col("failed") / pl.col("requests")
    per_client = agg.per_client.select("client", share.alias("rate"))
    return {
        "windows": agg.per_window.select("client", "window_start_s", share.alias("failure_rate")),
        "clients": dict(zip(per_client["client"].to_list(), per_client["rate"].to_list())),
        "summary": {"rate": float(failed / agg.per_client["requests"].sum()), "zero_output": not agg.nonzero},
    }


def _lists_by_client(frame: pl.DataFrame, key: str, cols: list[str]) -> dict:
    ordered = frame.sort(["client", key])
    grouped = ordered.group_by("client", maintain_order=True).agg([pl.col(key), *[pl.col(c) for c in cols]])
    return {r["client"]: r for r in grouped.iter_rows(named=True)}


def assemble(agg: Aggregates, settings: Settings, source: dict, dataset_window_s: int, binning: dict | None,
             ingest: dict | None = None) -> dict:
    binning = dict(binning or settings.fit.binning())
    window_s = int(settings.window_s)
    t0, t1 = agg.t0, agg.t1
    g0 = int(np.floor(t0 / window_s) * window_s)
    per_window, per_client = agg.per_window, agg.per_client
    last = int(per_window["window_start_s"].max())
    grid = np.arange(g0, last + window_s, window_s, dtype=np.int64)
    ks_samples = agg.ks
    failures = failure_rates(agg)
    if failures is not None:
        per_window = per_window.join(failures["windows"], on=["client", "window_start_s"], how="left")
    window_cols = ["rate_rps", "cv", "family", "shape", "scale"] + (["failure_rate"] if failures else [])
    windows = _lists_by_client(per_window, "window_start_s", window_cols)

    category = agg.category
    counts = agg.counts
    pmfs = lengths.window_pmfs(counts, binning)
    pooled = {n: {r["client"]: r for r in f.iter_rows(named=True)} for n, f in lengths.pooled_pmfs(counts, binning).items()}
    names = CATEGORY_FIELDS[category]
    # a client's dataset windows: those where every field has a PMF
    dw = None
    for n in names:
        keys = pmfs[n].select("client", "dataset_start_s")
        dw = keys if dw is None else dw.join(keys, on=["client", "dataset_start_s"], how="inner")
    pmf_by = {n: _lists_by_client(pmfs[n].join(dw, on=["client", "dataset_start_s"]), "dataset_start_s", ["values", "probs"]) for n in names}
    jnames = lengths.joint_fields(category)
    joint = {r["client"]: r for r in agg.joint.iter_rows(named=True)}
    total = agg.rows
    clients, taken = [], set()
    for row in per_client.sort(["requests", "client"], descending=[True, False]).iter_rows(named=True):
        c = row["client"]
        w = windows[c]
        fam = row["family"] or "gamma"
        shape, scale = (row["shape"], row["scale"]) if row["family"] else (1.0, 1.0 / max(row["rate_rps"], 1e-12))
        lens = {"window_start_s": pmf_by[names[0]][c]["dataset_start_s"] if c in pmf_by[names[0]] else [],
                "fields": {n: [{"values": v, "probs": p} for v, p in zip(pmf_by[n][c]["values"], pmf_by[n][c]["probs"])]
                           if c in pmf_by[n] else [] for n in names},
                "fit": {n: pmf_fit(pooled[n][c]["values"], pooled[n][c]["probs"], continuous=n == "reason_ratio")
                        for n in names if c in pooled[n]}}
        j = joint.get(c, {})
        clients.append({
            "id": agg.names[c],
            "safe_id": safe_client_id(agg.names[c], taken),
            "share": row["requests"] / total,
            "requests": int(row["requests"]),
            "iat": {"family": fam, "params": {"shape": shape, "scale": scale}, "cv": row["cv"],
                    "ks": arrivals.iat_ks(ks_samples.get(c, np.zeros(0)), fam, shape, scale)},
            "windows": {"start_s": w["window_start_s"], **{k: w[k] for k in window_cols}},
            **({"failure_rate": failures["clients"][c]} if failures else {}),
            "lengths": lens,
            "joint": {"fields": list(jnames), "copula": "gaussian", "corr": lengths.corr_matrix(j, jnames),
                      "spearman": {f"{a}:{b}": j.get(f"rho:{a}:{b}") for i, a in enumerate(jnames) for b in jnames[i + 1:]}},
        })
    overall = agg.overall
    at = ((overall["window_start_s"].to_numpy() - g0) // window_s).astype(int)
    rate, agg_cv = np.zeros(grid.size), np.full(grid.size, np.nan)
    rate[at] = overall["rate_rps"].to_numpy()
    agg_cv[at] = overall["cv"].to_numpy().astype(float)
    return {
        "schema": SCHEMA_ID,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source,
        "settings": record(settings, agg.group_name, ingest),
        "window_s": window_s,
        "dataset_window_s": dataset_window_s,
        "span_s": float(grid.size * window_s),
        "covered": {"start_s": t0, "end_s": t1},
        **({"failures": failures["summary"]} if failures else {}),
        "group_by": agg.group_name,
        "category": category,
        "pmf_binning": binning,
        "aggregate": {"window_start_s": grid.tolist(), "rate_rps": rate.tolist(),
                      "cv": [None if np.isnan(v) else float(v) for v in agg_cv]},
        "clients": clients,
    }


def source_of(requests_path: Path) -> dict:
    meta = io.parquet_metadata(requests_path)
    rows = meta.get("servetrace.rows_read")
    # File names only: a bundle records no output location (the same input gives the same bytes).
    return {"path": meta.get("servetrace.source", requests_path.name), "sha256": meta.get("servetrace.sha256"),
            "rows": int(rows) if rows and rows.isdigit() else None, "format": meta.get("servetrace.format", "parquet")}


def fit_columns(path: Path, group_by: str | None) -> list[str]:
    """The columns of DIR/requests.parquet a bundle is fitted from (arrivals, grouping, lengths),
    all-null ones left out."""
    if not path.exists():
        raise ServetraceError(f"{path}: no such file (run `servetrace ingest` first)")
    try:
        schema = io.parquet_schema(path)
        named = {c.strip() for c in (group_by or "").split(",")}
        wanted = {"arrival_s", "input_tokens", "output_tokens", *named,
                  *({*grouping.COLUMNS, *lengths.LENGTH_INPUTS} - read.all_null(path))}
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for an unreadable file
        raise ServetraceError(f"{path}: not a readable Parquet table ({str(exc).splitlines()[0]})") from None
    missing = {"arrival_s", "input_tokens", "output_tokens"} - set(schema.names)
    if missing:
        raise ServetraceError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    return [c for c in schema.names if c in wanted]


def bundle_from_requests(requests: pl.DataFrame, settings: Settings, source: dict) -> dict:
    """The bundle of a request frame (any row order)."""
    if requests.height == 0:
        raise ServetraceError(f"{source.get('path')}: no requests to fit")
    if not requests["arrival_s"].is_sorted():
        requests = requests.sort("arrival_s", maintain_order=True)
    bundle = fit_batches(read.frame_batches(requests), requests.columns, settings, source,
                         lambda by: frame_group_codes(requests, by))
    return with_arrival_model(bundle, requests.lazy(), settings.fit.arrival_model)


def fit_bundle(out_dir: str | Path, settings: Settings | None = None) -> dict:
    """The bundle of DIR/requests.parquet (validated, not written), streamed in batches."""
    path = Path(out_dir) / REQUESTS
    settings = settings or Settings()
    if settings.group_by:
        grouping.parse(settings.group_by)  # a bad --group-by fails before any work
    columns = fit_columns(path, settings.group_by)
    lo, hi = pl.scan_parquet(io.parquet_parts(path)).select(lo=pl.col("arrival_s").min(), hi=pl.col("arrival_s").max()).collect().row(0)
    check_span((hi or 0.0) - (lo or 0.0), settings.window_s, path)
    try:
        bundle = with_arrival_model(_fit_file(path, columns, settings, path), path, settings.fit.arrival_model)
    except read.Unsorted:  # not written by ingest: sorted into a temporary copy first
        with io.temporary_dir(path.parent, ".fit-sort.") as tmp:
            copy = read.sorted_copy(path, columns, Path(tmp), settings.memory_limit)
            bundle = with_arrival_model(_fit_file(copy, columns, settings, path), copy, settings.fit.arrival_model)
    return with_reuse_models(bundle, path, settings)


def with_models(bundle: dict, path: Path, settings: Settings, reuse: object = ANALYZE, groups: Codes | None = None,
                counted: BinCounts | None = None) -> dict:
    """The bundle of DIR/requests.parquet (sorted by arrival, as ingest writes it) with its arrival
    model (bundle/arrival_model.py; `groups`: the clients' codes, if held; `counted`: its bin counts,
    if made on the fit's second pass) and v2's session and prefix models."""
    out = with_reuse_models(bundle, path, settings, reuse)  # a session trace's arrival model: on its starts
    return out if "arrival_model" in out else with_arrival_model(out, path, settings.fit.arrival_model, groups=groups,
                                                                  counted=counted)


def with_reuse_models(bundle: dict, path: Path, settings: Settings, reuse: object = ANALYZE, con=None) -> dict:
    """The bundle with v2's session and prefix models of DIR/requests.parquet, and the agent model
    of an agent trace; `reuse` is the block reuse analysis when the caller already made it
    (characterize's prefix stage), else it is made here. With sessions, the arrival model is fitted on their starts.
    `con`: a connection with `stg_requests` (Spark's, or DuckDB's in the SQL fit) where the session model's
    requests and starts are made by SQL (session_sql.py), and the agent model's aggregates (bundle/agents.py)."""
    reuse = analyzed(path, settings.seed, settings.stages.reuse) if reuse is ANALYZE else reuse
    clients = lambda: client_index(path, bundle, OTHER)
    names = client_names(path, bundle, OTHER)  # the agent model's clients are named by SQL (agents/call_clients.sql)
    out = {**bundle, **fit_reuse_models(path, settings.seed, reuse, clients, settings.fit.sessions, settings.stages.reuse,
                                          (bundle["aggregate"]["window_start_s"], bundle["window_s"]), con,
                                          names if con is not None else None),
           **fit_agent_model(path, settings.window_s, settings.memory_limit, settings.fit.agents,
                             names and (*names, bundle["group_by"].split(",")), con)}
    if con is not None:  # the sessions' starts by SQL (session_keys, made by fit_reuse_models)
        return start_arrival_model_on(out, con, path, settings.fit.arrival_model)
    return with_start_arrival_model(out, path, reuse, settings.fit.arrival_model)


def _fit_file(path: Path, columns: list[str], settings: Settings, original: Path) -> dict:
    """The bundle of the table at `path` (sorted), recording `original`'s source and ingest settings."""
    rows = io.parquet_rows(path)
    return fit_batches(read.file_batches(path), columns, settings, source_of(original),
                       lambda by: group_codes(path, rows, by), ingest_of(io.parquet_metadata(original)))


def write_bundle(out_dir: str | Path, settings: Settings | None = None) -> Path:
    """Fit DIR/requests.parquet and write DIR/bundle.json atomically; returns its path."""
    return save_bundle(Path(out_dir) / BUNDLE, fit_bundle(out_dir, settings))
