"""The session model's statistics as grouped aggregates on an engine's connection (sql/sessions/
session_*.sql over `session_requests`, the sampled sessions' requests): on Spark no session row
reaches the driver, only counts, quantile functions, moments and a few scalars per model.

The same model as bundle/sessions.py's `session_model`, `client_sessions`, `start_share` and
bundle/under_way.py's `session_window` compute from the frame on the driver
(tests/test_session_stats.py holds them equal within 1e-9, relative): quantiles by
`quantile_cont` grouped by (model, metric, class of turns, cell); the lognormal's mu and sigma as
the mean and standard deviation of logs, its KS from each value's CDF (normal_cdf, sql/macros.sql,
W. J. Cody's erfc: within 2e-16 of scipy's ndtr); gap_rho's normal scores by normal_quantile_low
and a Halley step (within 2e-15 of scipy's ndtri); the turns PMF's EM (bundle/turns.py) over the
sessions counted by (turns, chance of a gap past the span end). What remains on the driver is
arithmetic on those aggregates: the class edges and gap ranges (registered back as small tables),
the EM, the chi-square and geometric fits.

A session model's scope (session_scoped.sql): 0 the trace's, c + 1 bundle client c's, -1 the tail
of the other clients, -2 the sessions started after the window's burn time."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from servetrace.bundle.sessions import start_bins, start_share_of, turn_classes
from servetrace.bundle.turns import censored_counts, gap_ranges, turns_fit
from servetrace.bundle.under_way import FIFTHS, returns_of, under_way_of
from servetrace.settings import SessionModelSettings
from servetrace.stages import sql

TAIL, LATE = -1, -2
NEVER = 1e300  # a burn time no session starts after
BIG = 1 << 62


def sessions_on(con, rows: int, t: SessionModelSettings, windows: tuple | None, n_clients: int | None) -> dict | None:
    """`fit_reuse_models`' `sessions` (without `source`) from `session_requests` on `con` (`rows`:
    the trace's requests), or None without sampled sessions. `n_clients`: the bundle's clients
    where they are client groups (the per-client models), else None."""
    s = sql.table(con, "session_summary", once=True).row(0, named=True)
    height = int(s["requests"] or 0)
    if not height:
        return None
    origin, span = float(s["first_s"]), float(s["last_s"]) - float(s["first_s"])
    sql.set_variables(con, {"session_origin": origin, "session_span": span, "session_burn": NEVER, "session_lag": 0.0,
                            "session_probs": np.linspace(0, 1, t.quantile_points).tolist()})
    ret = _returns(con, s, span)
    burn = _burn(con, s, span)
    own, starts, requests = _clients(con, n_clients, t)
    tail = bool(own) and int(s["sessions"]) - int(starts[own].sum()) >= t.client_session_min
    con.register("session_scopes", pa.table({"client": pa.array(own, pa.int64()),
                                             "scope": pa.array([c + 1 for c in own], pa.int64())}))
    sql.set_variables(con, {"session_tail": tail, "session_burn": burn[0] if burn else NEVER})
    sql.materialize(con, "session_scoped")
    models, late_turns = _models(con, t)
    out = dict(models[0])
    if windows is not None and len(windows[0]):
        out["start_share"] = _start_share(con, windows, height, t)
    under = None
    if burn is not None:
        under = under_way_of(burn[0], burn[1], span, burn[2], burn[3], late_turns, float(s["gap_mean"]), rows / height)
    out["window"] = {"returns": ret, "stationary": None if ret is None else ret["p"] >= 1e-3, "under_way": under}
    if n_clients is not None:
        clients: list = [None] * n_clients
        for c in own:  # a loop over the dominant clients
            clients[c] = {**models[c + 1], "starts_per_request": float(starts[c] / requests[c])}
        others = np.setdiff1d(np.arange(n_clients), own)
        out["clients"] = clients if own else None
        out["tail"] = ({**models[TAIL], "starts_per_request": float(starts[others].sum() / max(requests[others].sum(), 1))}
                       if tail else None)
    return out


def _returns(con, s: dict, span: float) -> dict | None:
    """under_way.returns from the median gap and the counts per fifth."""
    if int(s["gaps"] or 0) < 2:
        return None
    lag = float(s["gap_median"])
    if span < 2 * lag or lag <= 0:
        return None
    sql.set_variables(con, {"session_lag": lag})
    fifths = sql.table(con, "session_returns", once=True)
    n, k = np.zeros(FIFTHS, np.int64), np.zeros(FIFTHS)
    at = fifths["fifth"].cast(pl.Int64).to_numpy()
    n[at], k[at] = fifths["n"].cast(pl.Int64).to_numpy(), fifths["k"].cast(pl.Float64).to_numpy()
    return returns_of(lag, n, k)


def _burn(con, s: dict, span: float) -> tuple[float, float, int, int] | None:
    """(burn time, its tail, sessions starting after it, before it), or None where under_way has
    no answer (under 20 gaps, a burn time past half the span, fewer than 2 late sessions)."""
    if int(s["gaps"] or 0) < 20 or float(s["gap_mean"]) <= 0:
        return None
    b = sql.table(con, "session_burn", once=True).row(0, named=True)
    burn, tail = float(b["burn_s"]), float(b["tail"])
    if burn >= span / 2:
        return None
    sql.set_variables(con, {"session_burn": burn})
    late = sql.table(con, "session_late", once=True).row(0, named=True)
    return None if int(late["late"]) < 2 else (burn, tail, int(late["late"]), int(late["early"]))


def _clients(con, n_clients: int | None, t: SessionModelSettings) -> tuple[list[int], np.ndarray, np.ndarray]:
    """(the dominant clients, sessions started and requests made per client): client_sessions' choice."""
    if n_clients is None:
        return [], np.zeros(0, np.int64), np.zeros(0, np.int64)
    got = sql.table(con, "session_client_counts", once=True)
    starts, requests = np.zeros(n_clients, np.int64), np.zeros(n_clients, np.int64)
    at = got["client"].cast(pl.Int64).to_numpy()
    starts[at], requests[at] = got["starts"].cast(pl.Int64).to_numpy(), got["requests"].cast(pl.Int64).to_numpy()
    own = [int(c) for c in np.argsort(-starts, kind="stable")[:t.client_models] if starts[c] >= t.client_session_min]
    return own, starts, requests


def _start_share(con, windows: tuple, height: int, t: SessionModelSettings) -> dict:
    origin, bin_s, n_bins = start_bins(*windows, height, t)
    sql.set_variables(con, {"session_share_origin": origin, "session_share_bin_s": bin_s, "session_share_bins": n_bins})
    bins = sql.table(con, "session_start_share", once=True)
    n, first = np.zeros(n_bins, np.int64), np.zeros(n_bins)
    at = bins["bin"].cast(pl.Int64).to_numpy()
    n[at], first[at] = bins["n"].cast(pl.Int64).to_numpy(), bins["firsts"].cast(pl.Float64).to_numpy()
    return start_share_of(origin, bin_s, n, first)


def _models(con, t: SessionModelSettings) -> tuple[dict[int, dict], dict | None]:
    """({scope: session_model's dict}, the late sessions' turns model) from the aggregates of session_scoped."""
    counts = {r["scope"]: r for r in sql.table(con, "session_counts", once=True).with_columns(pl.all().exclude("scope").cast(pl.Int64),
                                                                               pl.col("scope").cast(pl.Int64)).iter_rows(named=True)}
    classes = sql.table(con, "session_classes", once=True).with_columns(pl.col("scope", "cls", "n").cast(pl.Int64))
    edges, buckets, ranges = {}, [], []
    for scope, c in counts.items():  # a loop over models (at most the fit's client_models + 3)
        own = classes.filter((pl.col("scope") == scope) & (pl.col("kind") == "sessions"))
        per = np.bincount(own["cls"].to_numpy(), weights=own["n"].to_numpy()).astype(np.int64)
        gap = classes.filter((pl.col("scope") == scope) & (pl.col("kind") == "gaps"))
        gap_per = np.bincount(gap["cls"].to_numpy(), weights=gap["n"].to_numpy(), minlength=len(per)).astype(np.int64)
        for cls, reads in gap_ranges(gap_per, np.flatnonzero(per)).items():
            ranges.append((scope, cls, *(reads or (-1, BIG))))
        if c["sessions"] >= t.by_turns_min:
            edges[scope] = turn_classes(per, t.class_min)
            his = [*edges[scope][1:].tolist(), BIG]
            buckets += [(scope, b, int(lo), hi) for b, (lo, hi) in enumerate(zip(edges[scope], his))]
    con.register("session_buckets", _table(["scope", "bucket", "lo", "hi"], buckets))
    con.register("session_gap_ranges", _table(["scope", "own", "lo", "hi"], ranges))
    surv = sql.table(con, "session_survival", once=True).with_columns(pl.col("scope", "turns", "sessions").cast(pl.Int64),
                                                           pl.col("s_left").cast(pl.Float64))
    quantiles = {(r["scope"], r["metric"], r["bucket"], r["cell"]): r for r in sql.table(con, "session_quantiles", once=True).with_columns(
        pl.col("scope", "bucket", "cell", "n").cast(pl.Int64)).iter_rows(named=True)}
    fits = {(r["scope"], r["metric"]): r for r in sql.table(con, "session_lognormal", once=True).with_columns(
        pl.col("scope", "n").cast(pl.Int64)).iter_rows(named=True)}
    rho = {(r["scope"], r["bucket"]): r for r in sql.table(con, "session_rho", once=True).with_columns(
        pl.col("scope", "bucket", "n").cast(pl.Int64)).iter_rows(named=True)} if buckets else {}
    probs = np.linspace(0, 1, t.quantile_points).tolist()

    def qf(scope: int, metric: str, bucket: int = -1, cell: int = -1) -> dict | None:
        r = quantiles.get((scope, metric, bucket, cell))
        return None if r is None else {"probs": probs, "quantiles": [float(v) for v in r["q"]], "n": int(r["n"])}

    def size(scope: int, metric: str, bucket: int, cell: int) -> int:
        r = quantiles.get((scope, metric, bucket, cell))
        return 0 if r is None else int(r["n"])

    def lognormal(scope: int, metric: str) -> dict | None:
        r = fits.get((scope, metric))
        if r is None or r["n"] < 2:
            return None
        return {"family": "lognormal", "params": {"mu": float(r["mu"]), "sigma": float(r["sigma"])}, "ks": float(r["ks"])}

    out = {}
    for scope, c in counts.items():  # a loop over models
        part = surv.filter(pl.col("scope") == scope)
        turns = turns_of(part, c["turns_sum"] / c["sessions"])
        by_turns = None
        if scope in edges:
            by_turns = {"turns_from": edges[scope].tolist(), "grouped_share": [], "first_new": [], "gap_s": [], "gap_rho": []}
            for b in range(len(edges[scope])):  # a loop over classes
                pooled = qf(scope, "first_new", b)
                by_turns["first_new"].append([qf(scope, "first_new", b, g) if size(scope, "first_new", b, g) >= t.cell_min
                                              else pooled for g in (0, 1)])
                by_turns["grouped_share"].append(size(scope, "first_new", b, 1) / size(scope, "first_new", b, -1))
                pooled = qf(scope, "gap", b) if size(scope, "gap", b, -1) >= t.cell_min else None
                by_turns["gap_s"].append([qf(scope, "gap", b, k) if size(scope, "gap", b, k) >= t.cell_min else pooled
                                          for k in range(4)])
                r = rho.get((scope, b))
                by_turns["gap_rho"].append(float("nan" if r["rho"] is None else r["rho"])
                                           if r is not None and r["n"] >= t.cell_min else 0.0)
        follow = c["follow_ups"] > 0
        out[scope] = {
            "sessions": c["sessions"],
            "grouped_share": c["grouped"] / c["sessions"],
            "follow_up_share": c["follow_ups"] / c["requests"],
            "turns": turns,
            "by_turns": by_turns,
            "gap_s": {**(qf(scope, "gap") or {}), "fit": lognormal(scope, "gap")} if follow else None,
            "think_s": {**qf(scope, "think"), "fit": lognormal(scope, "think")} if c["thinks"] else None,
            "first_new_tokens": qf(scope, "first_new"),
            "new_prompt_tokens": qf(scope, "new_prompt") if follow else None,
            "growth_tokens": qf(scope, "growth") if follow else None,
        }
    late = out.pop(LATE, None)
    return out, None if late is None else late["turns"]


def turns_of(part: pl.DataFrame, observed_mean: float) -> dict:
    """bundle/turns.py's `turns_model` from session_survival's counts of one model."""
    turns, weight = part["turns"].to_numpy(), part["sessions"].to_numpy().astype(float)
    if part["s_left"].is_null().all():  # no finite gap: the observed PMF
        values, index = np.unique(turns, return_inverse=True)
        counts = np.bincount(index, weights=weight)
        return turns_fit(values, counts / counts.sum(), 0.0, observed_mean)
    return turns_fit(*censored_counts(turns, part["s_left"].to_numpy(), weight), observed_mean)


def _table(names: list[str], rows: list[tuple]) -> pa.Table:
    return pa.table({n: pa.array([int(r[i]) for r in rows], pa.int64()) for i, n in enumerate(names)})
