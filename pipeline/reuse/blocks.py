"""KV-cache block references of a trace, read in batches: prefix ids, re-blocking, sampling.

A block's *prefix id* is a hash of every block id from the start of its request up to it
(a polynomial hash over splitmix64-mixed ids, mod 2^64, computed as a cumulative sum), so equal
prefix ids mean equal content from the first token on: what vLLM's and SGLang's prefix caches
key on, whether or not the source's ids already chain their prefix (Mooncake's do). Coarser
blocks of m source blocks take the prefix id of their last source block (a partial last group
keeps the id of its last block, so it differs from a full one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from servetrace import io
from servetrace.reuse.stack import _mix, shards_sample
from servetrace.schema import HASH_IDS
from servetrace.settings import ReuseSettings

BATCH_ROWS = 65_536
_P = np.uint64(0x100000001B3)  # FNV prime: the polynomial base


@dataclass
class Refs:
    """References in arrival order (kept ones when sampled): request index, block position, prefix id."""
    block_size: int
    req: np.ndarray
    pos: np.ndarray
    pid: np.ndarray
    rate: float  # SHARDS sampling rate (1.0: every reference)
    total: int  # references before sampling


def _powers(n: int) -> np.ndarray:
    out = np.empty(max(n, 1), dtype=np.uint64)
    out[0] = 1
    if n > 1:
        out[1:] = _P
        out = np.cumprod(out, dtype=np.uint64)  # wraps mod 2^64, as the hash means to
    return out


def prefix_ids(values: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(request index within the batch, position, prefix id) of each block of list rows."""
    lengths = np.diff(offsets)
    req = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    pos = np.arange(len(values), dtype=np.int64) - offsets[:-1][req]
    with np.errstate(over="ignore"):
        term = _mix(values) * _powers(int(lengths.max()) if len(lengths) else 1)[pos]
        run = np.cumsum(term, dtype=np.uint64)
        before = np.concatenate([[np.uint64(0)], run])[offsets[:-1]][req]
        pid = run - before
    return req, pos, pid


def coarsen(req: np.ndarray, pos: np.ndarray, pid: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocks of m source blocks: the prefix id of each group's last source block."""
    if m == 1:
        return req, pos, pid
    last = np.ones(len(req), dtype=bool)
    if len(req):
        last[:-1] = (req[1:] != req[:-1]) | ((pos[1:] // m) != (pos[:-1] // m))
    return req[last], pos[last] // m, pid[last]


def block_counts(path) -> np.ndarray:
    """Blocks per request (0 for a null list), in file order, read batch by batch (the lengths only
    are kept, never the ids)."""
    import pyarrow.compute as pc  # here: a trace without hash ids never loads it

    parts = [pc.list_value_length(b.column(0)).fill_null(0).to_numpy(zero_copy_only=False)
             for b in io.parquet_batches(path, [HASH_IDS], BATCH_ROWS)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def read_refs(path, block_size: int, factors: tuple[int, ...] = (1,), exact_max: int = ReuseSettings.exact_max,
              rate: float | None = None, sampled_target: int = ReuseSettings.sampled_target) -> dict[int, Refs]:
    """Per re-blocking factor m, the references at block size m x block_size: all of them when
    they number at most `exact_max`, else a SHARDS sample (`rate`, or about `sampled_target`)."""
    lengths = block_counts(path)
    totals = {m: int(np.sum(-(-lengths // m))) for m in factors}
    rates = {m: (rate if rate is not None else (1.0 if totals[m] <= exact_max else sampled_target / totals[m]))
             for m in factors}
    parts: dict[int, list] = {m: [] for m in factors}
    row0 = 0
    for batch in io.parquet_batches(path, [HASH_IDS], BATCH_ROWS):
        col = batch.column(0)
        col = col.fill_null(pa.scalar([], type=col.type)) if col.null_count else col
        offsets = col.offsets.to_numpy() - col.offsets[0].as_py()
        values = col.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
        req, pos, pid = prefix_ids(values, offsets)
        req = req + row0
        for m in factors:
            r, p, d = coarsen(req, pos, pid, m)
            if rates[m] < 1.0:
                keep = shards_sample(d, rates[m])
                r, p, d = r[keep], p[keep], d[keep]
            parts[m].append((r, p.astype(np.int32), d))
        row0 += len(col)
    out = {}
    for m in factors:
        cols = list(zip(*parts[m])) if parts[m] else [[np.zeros(0, np.int64)], [np.zeros(0, np.int32)],
                                                       [np.zeros(0, np.uint64)]]
        out[m] = Refs(block_size * m, *(np.concatenate(c) for c in cols), rates[m], totals[m])
    return out


def infer_block_size(input_tokens: np.ndarray, n_blocks: np.ndarray) -> tuple[int, str]:
    """The source's block size: the power of two B with ceil(input / B) == blocks on >= 99 % of
    rows ("exact"), else the power of two nearest the median tokens per block ("estimated")."""
    ok = (n_blocks > 0) & (input_tokens > 0)
    x, n = input_tokens[ok].astype(np.int64), n_blocks[ok].astype(np.int64)
    exact = {b: int(np.sum(-(-x // b) == n)) for b in CANDIDATE_SIZES}
    return block_size_from(len(x), exact, float(np.median(x / n)) if len(x) else None)


CANDIDATE_SIZES = tuple(2 ** k for k in range(0, 15))


def block_size_from(eligible: int, exact_rows: dict[int, int], median: float | None) -> tuple[int, str]:
    """`infer_block_size` from its counts: the rows with blocks and input tokens, those on which each
    candidate size fits exactly, and the median tokens per block."""
    if not eligible:
        return 512, "default (no blocks)"
    for b in CANDIDATE_SIZES:
        if exact_rows.get(b, 0) / eligible >= 0.99:
            return b, "exact"
    return int(2 ** round(np.log2(max(median, 1.0)))), "estimated"
