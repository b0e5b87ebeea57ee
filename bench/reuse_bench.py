"""The LRU prefix-cache curve of a large block stream, timed inside the process (`make bench`).

    python -m bench.reuse_bench --blocks 10000000 [--out DIR] [--seed 0]

Writes (once, cached) a canonical Parquet trace of about --blocks KV blocks: sessions whose turns
extend their previous context, starting from one of a few Zipf-popular shared prefixes, ids
chained as content ids (`tests`-style, vectorized). Then times `read_refs` + `hit_curve` over the
source's capacity ladder (SHARDS past the exact limit) and prints one JSON line: blocks, method,
sample rate, seconds, infinite-cache hit rate."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from servetrace.io import write_parquet
from servetrace.reuse.blocks import read_refs
from servetrace.reuse.curve import capacity_ladder, hit_curve

BLOCK = 16


def make_trace(path: Path, blocks: int, seed: int) -> None:
    """Requests of ~60 blocks: a shared prefix (one of 200, Zipf 1.1) then session blocks; a
    session's turn k holds its first k x 20 blocks (so each turn extends the previous one)."""
    rng = np.random.default_rng(seed)
    n_req = max(1, blocks // 60)
    turns = rng.geometric(0.3, n_req)
    sessions = np.repeat(np.arange(n_req), turns)[:n_req]
    turn = (np.arange(n_req) - np.searchsorted(sessions, sessions)) + 1
    order = rng.permutation(n_req)  # sessions interleave over time; turns stay in order below
    order = order[np.lexsort((turn[order], order // 50))]
    sessions, turn = sessions[order], turn[order]
    group = rng.zipf(1.1, len(order)) % 200
    g_len = 10 + group % 30
    lens = g_len[sessions] + turn * 20
    keep = max(1, int(np.searchsorted(np.cumsum(lens), blocks, side="right")))  # about `blocks` blocks
    sessions, turn, lens = sessions[:keep], turn[:keep], lens[:keep]
    n_req = keep
    offsets = np.r_[0, np.cumsum(lens)]
    req = np.repeat(np.arange(n_req), lens)
    j = np.arange(offsets[-1]) - offsets[:-1][req]
    in_group = j < g_len[sessions][req]
    ids = np.where(in_group, (np.int64(1) << 40) | (group[sessions][req].astype(np.int64) << 20) | j,
                   (sessions[req].astype(np.int64) << 20) | j)
    table = pa.table({"arrival_s": np.arange(n_req, dtype=float), "input_tokens": pa.array(lens * BLOCK, pa.int32()),
                      "output_tokens": pa.array(np.full(n_req, 10), pa.int32()),
                      "hash_ids": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(ids))})
    write_parquet(path, table, {})


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=10_000_000)
    ap.add_argument("--out", type=Path, default=Path("data/bench"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    path = args.out / f"reuse_{args.blocks}_{args.seed}.parquet"
    if not path.exists():
        args.out.mkdir(parents=True, exist_ok=True)
        make_trace(path, args.blocks, args.seed)
    t0 = time.perf_counter()
    refs = read_refs(path, BLOCK)[1]
    curve = hit_curve(refs, capacity_ladder(int(len(np.unique(refs.pid)) / refs.rate)))
    elapsed = time.perf_counter() - t0
    out = {"blocks": refs.total, "method": "exact" if refs.rate >= 1 else "shards", "sample_rate": refs.rate,
           "lru_curve_s": round(elapsed, 3), "infinite_hit_rate": float(curve["hit_rate"][-1])}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
