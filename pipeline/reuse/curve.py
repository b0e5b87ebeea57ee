"""LRU prefix-cache hit rate against capacity, and the reuse-distance distribution.

Model: every request looks up its blocks in order and hits the leading run already cached
(vLLM / SGLang prefix caching); every block it uses becomes most recent, misses included, so
the cache is an LRU stack and a block hits at capacity C iff its stack distance is < C. A block
is a *prefix hit* iff it and every earlier block of its request hit, i.e. iff the running
maximum of stack distances over the request's blocks so far is < C. So one pass of stack
distances gives the whole curve: hit(C) = share of blocks whose running maximum is < C.
Under SHARDS sampling the distances are scaled by 1 / rate and the running maximum runs over
a request's sampled blocks.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.reuse.blocks import Refs
from servetrace.reuse.stack import stack_distances

INF = np.iinfo(np.int64).max


def capacity_ladder(distinct_blocks: int, start: int = 16) -> np.ndarray:
    """Powers of two from `start` blocks to the first one holding every distinct block."""
    top = max(start, 1 << int(np.ceil(np.log2(max(distinct_blocks, 1)))))
    return np.array([1 << k for k in range(int(np.log2(start)), int(np.log2(top)) + 1)], dtype=np.int64)


def distances(refs: Refs) -> tuple[np.ndarray, np.ndarray]:
    """(stack distance, running maximum within the request), INF for first references, scaled by 1 / rate."""
    sd = stack_distances(refs.pid)
    scaled = np.where(sd < 0, INF, np.floor(sd / refs.rate).astype(np.int64) if refs.rate < 1 else sd)
    if not len(scaled):
        return scaled, scaled
    # running maximum per request: requests are contiguous and ascending, so offset each by its index
    req = refs.req - refs.req[0]
    capped = np.minimum(scaled, INF // 4)
    span = int(capped.max()) + 2
    if float(req[-1]) * span < 2 ** 62:
        off = req * span
        running = np.maximum.accumulate(capped + off) - off
    else:  # offsets would overflow int64: Polars' grouped running maximum
        running = pl.DataFrame({"r": req, "d": capped}).select(pl.col("d").cum_max().over("r"))["d"].to_numpy()
    running = np.where(running >= INF // 4, INF, running)
    return scaled, running


def hit_curve(refs: Refs, capacities: np.ndarray, running: np.ndarray | None = None) -> pl.DataFrame:
    """LRU prefix-cache hit rate per capacity (blocks and tokens), plus the infinite cache
    (capacity null); `running`: the references' running maxima when already computed."""
    if running is None:
        _, running = distances(refs)
    srt = np.sort(running)
    hits = np.searchsorted(srt, capacities, side="left")  # running < C
    return curve_frame(refs.block_size, capacities, hits, len(running), int(np.sum(running < INF)), refs.rate)


def curve_frame(block_size: int, capacities: np.ndarray, hits: np.ndarray, refs: int, inf_hits: int,
                rate: float, inf_refs: int | None = None) -> pl.DataFrame:
    """The curve's table from its counts: `hits` per capacity out of `refs` references, `inf_hits`
    (out of `inf_refs`, default `refs`) for the infinite cache."""
    n, n_inf = max(refs, 1), max(inf_refs if inf_refs is not None else refs, 1)
    return pl.DataFrame({
        "block_size": [block_size] * (len(capacities) + 1),
        "capacity_blocks": [*map(int, capacities), None],
        "capacity_tokens": [*(int(c) * block_size for c in capacities), None],
        "hit_rate": [*(np.asarray(hits) / n), inf_hits / n_inf],
        "method": ["exact" if rate >= 1 else "shards"] * (len(capacities) + 1),
        "sample_rate": [float(rate)] * (len(capacities) + 1),
    }, schema_overrides={"capacity_blocks": pl.Int64, "capacity_tokens": pl.Int64})


def reuse_histogram(sd: np.ndarray) -> pl.DataFrame:
    """Reuse distances (blocks) in log2 bins [2^k, 2^(k+1)), bin 0 holding distance 0; first references apart."""
    reused = sd[sd < INF]
    k = np.where(reused > 0, np.floor(np.log2(np.maximum(reused, 1))).astype(np.int64) + 1, 0)
    return histogram_frame(np.bincount(k) if len(k) else np.zeros(1, np.int64), len(sd))


def histogram_frame(counts: np.ndarray, refs: int) -> pl.DataFrame:
    """The histogram's table from its counts per bin (bin k: bit length k) out of `refs` references."""
    lo = np.array([0] + [1 << (i - 1) for i in range(1, len(counts))], dtype=np.int64)
    return pl.DataFrame({"distance_lo": lo, "distance_hi": np.maximum(lo * 2, 1), "references": counts,
                         "share": counts / max(refs, 1)})


def leading_seen(refs: Refs) -> np.ndarray:
    """Per reference: it and every earlier block of its request were seen before (an infinite
    prefix cache hits it). First uses come from one sort of the prefix ids; no stack distances."""
    cold = np.ones(len(refs.pid), dtype=np.int64)
    cold[np.unique(refs.pid, return_index=True)[1]] = 0
    cold = 1 - cold  # 1 at a block's first use
    run = np.cumsum(cold)
    first = np.ones(len(refs.req), dtype=bool)
    first[1:] = refs.req[1:] != refs.req[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(len(run)), 0)) if len(run) else run
    return (run - (run - cold)[start]) == 0
