"""The smallest number of servers that meets the latency target, and latency against servers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from servetrace.provision.model import latencies, unqueued_s, work_s
from servetrace.settings import ServingModel


@dataclass(frozen=True)
class Requests:
    """The columns the serving model reads, as arrays sorted by arrival."""

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    @classmethod
    def of(cls, df: pl.DataFrame) -> "Requests":
        df = df.sort("arrival_s", maintain_order=True)
        return cls(df["arrival_s"].to_numpy().astype(np.float64),
                   df["input_tokens"].fill_null(0).to_numpy().astype(np.float64),
                   df["output_tokens"].fill_null(0).to_numpy().astype(np.float64))


def latency_quantile(r: Requests, servers: int, model: ServingModel) -> float:
    lat = latencies(r.arrival_s, r.input_tokens, r.output_tokens, servers, model)
    return float(np.quantile(lat, model.quantile))


def min_servers(r: Requests, model: ServingModel) -> dict:
    """Smallest N with latency quantile <= target: doubling from the load bound, then bisection
    (latency falls as servers are added). `servers` is None when the target is out of reach."""
    floor = float(np.quantile(unqueued_s(model, r.input_tokens, r.output_tokens), model.quantile))
    if floor > model.target_s:
        return {"servers": None, "latency_s": None, "evaluations": 0,
                "reason": f"latency without any queueing is already {floor:.3g} s > target {model.target_s:g} s"}
    span = float(r.arrival_s[-1] - r.arrival_s[0]) if len(r.arrival_s) > 1 else 0.0
    work = float(work_s(model, r.input_tokens, r.output_tokens).sum())
    lo = max(1, math.ceil(work / span) if span > 0 else 1)  # fewer servers than this cannot keep up
    seen: dict[int, float] = {}

    def ok(n: int) -> bool:
        seen[n] = latency_quantile(r, n, model)
        return seen[n] <= model.target_s

    hi = lo
    while not ok(hi):
        if hi >= model.max_servers:
            return {"servers": None, "latency_s": seen[hi], "evaluations": len(seen),
                    "reason": f"target not met with max_servers={model.max_servers}"}
        lo, hi = hi + 1, min(hi * 2, model.max_servers)
    while lo < hi:  # invariant: hi meets the target, nothing below lo was found to
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return {"servers": hi, "latency_s": seen[hi], "evaluations": len(seen)}


def server_grid(capacities: list[int | None], points: int = 24) -> list[int]:
    """Server counts to draw latency at: from half the smallest capacity to 1.5 x the largest."""
    found = [c for c in capacities if c]
    if not found:
        return []
    lo, hi = max(1, min(found) // 2), max(2, math.ceil(max(found) * 1.5))
    grid = np.unique(np.round(np.geomspace(lo, hi, points)).astype(int))
    return sorted(set(grid.tolist()) | set(found))


def latency_curve(traces: dict[str, Requests], grid: list[int], model: ServingModel) -> pl.DataFrame:
    """Long table: servers, trace, latency at the model's quantile."""
    rows = [(n, name, latency_quantile(r, n, model)) for name, r in traces.items() for n in grid]
    return pl.DataFrame(rows, schema={"servers": pl.Int64, "trace": pl.String, "latency_s": pl.Float64},
                        orient="row")
