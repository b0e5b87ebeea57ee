"""Client composition: how many clients (or groups), how concentrated the load is, how they differ."""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.findings import Absent, Finding, absent
from servetrace.stages import sql
from servetrace.settings import DEFAULTS
from servetrace.stages.context import Context, fmt, pct



def top_share(counts: np.ndarray, k: int) -> float:
    """Share of all requests sent by the k largest groups."""
    c = np.sort(counts)[::-1]
    return float(c[:k].sum() / c.sum())


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of per-group request counts (0 = equal, -> 1 = one group sends all)."""
    c = np.sort(np.asarray(counts, dtype=float))
    n = len(c)
    if n == 0 or c.sum() == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * c).sum() / (n * c.sum()))


def lorenz(counts: np.ndarray, points: int = DEFAULTS.stages.lorenz_points) -> pl.DataFrame:
    """Lorenz curve: cumulative share of groups (smallest first) vs cumulative share of requests,
    from (0, 0) to (1, 1), thinned to at most `points` evenly spaced groups."""
    c = np.sort(np.asarray(counts, dtype=float))
    n = len(c)
    cum = np.concatenate([[0.0], np.cumsum(c) / c.sum()])
    idx = np.unique(np.round(np.linspace(0, n, min(n, points) + 1)).astype(int))
    return pl.DataFrame({"groups": idx, "group_share": idx / n, "request_share": cum[idx]})


def clients(con, ctx: Context) -> tuple[Finding | Absent, dict]:
    if ctx.rows == 0:
        return Absent("clients", "no requests"), {}
    counts = sql.table(con, "group_counts")["requests"].to_numpy()
    table = sql.table(con, "clients", order_by="rank")
    active = sql.table(con, "active_clients", order_by="window_idx")
    shares = {str(k): top_share(counts, k) for k in ctx.settings.top_k}
    g = gini(counts) if len(counts) > 1 else absent("one group: concentration is undefined")
    busy = table.filter(pl.col("requests") >= 20)
    values = {
        "group_by": ctx.group_by,
        "group_by_reason": ctx.group_by_reason,
        "count": int(len(counts)),
        "top_share": shares,
        "gini": g,
        "active_per_window": {"mean": _mean(active["active_groups"]), "max": int(active["active_groups"].max() or 0)},
        "iat_cv_median": _median(busy["iat_cv"]),
        "table_rows": table.height,
    }
    noun = "clients" if ctx.group_by == "client_id" else f"groups ({ctx.group_by})"
    top = ", ".join(f"top {k} {pct(v)}" for k, v in shares.items())
    gini_text = f"Gini {fmt(g, 2)}" if isinstance(g, float) else "Gini undefined for one group"
    statement = f"{len(counts):,} {noun} ({ctx.group_by_reason}); {top} of requests; {gini_text}."
    tables = {"clients": table, "lorenz": lorenz(counts, ctx.settings.stages.lorenz_points), "active_clients": active}
    return Finding("clients", values, statement, list(tables)), tables


def _mean(s: pl.Series) -> float | None:
    return float(s.mean()) if s.len() else None


def _median(s: pl.Series) -> float | None:
    s = s.drop_nulls()
    return float(s.median()) if s.len() else None
