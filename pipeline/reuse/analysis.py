"""Everything measured about block reuse in one canonical Parquet trace with hash_ids: the LRU
curve per block size, reuse distances, per-request reused and new tokens, the prefix tree,
shared-prefix groups and sessions inferred from prefix chains. Used by characterize (findings)
and by validate (the same numbers on both traces)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from servetrace import io
from servetrace.reuse.blocks import block_counts, infer_block_size, read_refs
from servetrace.reuse.chains import infer_parents, session_roots
from servetrace.reuse.curve import INF, capacity_ladder, distances, hit_curve, leading_seen, reuse_histogram
from servetrace.reuse.tree import shared_prefixes, top_shares, tree_shape
from servetrace.settings import ReuseSettings


@dataclass
class Reuse:
    block_size: int
    block_size_basis: str
    curve: pl.DataFrame  # every block size, capacities + infinite
    distance_hist: pl.DataFrame
    distance_sample: np.ndarray  # finite reuse distances (blocks, source size) for KS
    values: dict = field(default_factory=dict)
    groups: pl.DataFrame | None = None
    refs: object | None = None  # every reference at the source's block size (when the tree was built)
    parent: np.ndarray | None = None  # inferred parents (None when too large to infer)
    reused_blocks: np.ndarray | None = None
    session: np.ndarray | None = None  # session code per request (explicit or inferred)
    shared_blocks: np.ndarray | None = None  # leading blocks under a prefix two or more sessions share
    group_rows: np.ndarray | None = None  # per request, the row of its group's first request (-1: none)
    keyed: bool = False  # session keys, tree and groups made by SQL on the engine's connection (reuse/tree_sql.py)


def _q(x: np.ndarray) -> dict:
    if not len(x):
        return {"mean": None, "p50": None, "p90": None}
    return {"mean": float(np.mean(x)), "p50": float(np.quantile(x, 0.5)), "p90": float(np.quantile(x, 0.9))}


def analyze(path, block_size: int | None = None, sessions: np.ndarray | None = None,
            seed: int = 0, t: ReuseSettings = ReuseSettings()) -> Reuse:
    """`sessions`: explicit session codes per request (file order) when the trace has them; `t`:
    the analysis' sizes (settings.ReuseSettings)."""
    table = io.read_parquet(path, ["input_tokens"])
    inp = np.nan_to_num(table["input_tokens"].to_numpy(zero_copy_only=False).astype(np.float64)).astype(np.int64)
    n_blocks = block_counts(path)
    rows, totals = len(n_blocks), {1: int(n_blocks.sum())}
    basis = "given"
    if block_size is None:
        block_size, basis = infer_block_size(inp, n_blocks)
    factors = (1, *(s // block_size for s in t.coarser_blocks if s > block_size and s % block_size == 0))
    refs = read_refs(path, block_size, factors, exact_max=t.exact_max, sampled_target=t.sampled_target)
    curves, hist, sample = [], None, np.zeros(0)
    for m, r in refs.items():
        distinct = len(np.unique(r.pid)) / r.rate
        sd, running = distances(r)
        curves.append(hit_curve(r, capacity_ladder(int(distinct)), running))
        if m == 1:
            hist = reuse_histogram(sd)
            finite = sd[sd < INF]
            rng = np.random.default_rng(seed)
            k = t.distance_sample
            sample = np.sort(rng.choice(finite, k, replace=False)) if len(finite) > k else np.sort(finite)
    src = refs[1]
    curve = pl.concat(curves)
    inf_hit = float(curve.filter(pl.col("capacity_blocks").is_null() & (pl.col("block_size") == block_size))["hit_rate"][0])
    values = {"block_size": block_size, "block_size_basis": basis, "blocks": int(totals[1]), "requests": rows,
              "infinite_hit_rate": inf_hit, "lru_method": "exact" if src.rate >= 1 else "shards",
              "shards_rate": None if src.rate >= 1 else float(src.rate),
              "block_sizes": sorted(int(block_size * m) for m in factors)}
    out = Reuse(block_size, basis, curve, hist, sample, values)
    return with_tree(out, path, inp, sessions, t, src if src.rate >= 1 else None)


def with_tree(out: Reuse, path, inp: np.ndarray, sessions: np.ndarray | None, t: ReuseSettings,
              full=None) -> Reuse:
    """`out` with what needs every reference at the source's block size in memory (at most
    `t.tree_max` of them, else a note why not): the per-request reused and new tokens, the
    prefix tree, inferred parents and sessions, the shared-prefix groups. `full`: those
    references when already read."""
    values, block_size, rows = out.values, out.block_size, len(inp)
    if values["blocks"] > t.tree_max:
        values["tree"] = {"absent": f"{values['blocks']:,} block references: over {t.tree_max:,}, tree not built"}
        return out
    if full is None:  # the LRU curve was sampled (or made elsewhere); the per-request numbers need every reference
        full = read_refs(path, block_size, (1,), exact_max=t.tree_max)[1]
    if "reused_tokens" not in values:  # the set-based form (reuse/aggregates.py) brings them
        hit_blocks = np.bincount(full.req[leading_seen(full)], minlength=rows)
        reused_tok = np.minimum(hit_blocks * block_size, inp)
        values["reused_tokens"] = _q(reused_tok)
        values["new_tokens"] = _q(inp - reused_tok)
        values["reused_token_share"] = float(reused_tok.sum() / max(inp.sum(), 1))
    values["tree"] = tree_shape(full)
    parent, reused = infer_parents(full, inp)
    out.parent, out.reused_blocks = parent, reused
    session = sessions if sessions is not None else session_roots(parent)
    shared, groups, group_rows = shared_prefixes(full, session)
    out.groups, out.session, out.shared_blocks, out.refs, out.group_rows = groups, session, shared, full, group_rows
    values["shared_prefix"] = {
        "groups": int(groups.height),
        "request_share": float(np.mean(shared > 0)) if rows else None,
        "top_reference_share": top_shares(groups),
        "depth_tokens": _q(groups["depth_blocks"].to_numpy() * block_size),
        "sessions_basis": "session ids" if sessions is not None else "inferred from prefix chains"}
    return out
