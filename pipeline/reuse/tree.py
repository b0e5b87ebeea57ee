"""The shape of the prefix tree (nodes are prefix ids, a request is a root-to-node path) and the
shared-prefix groups: prefixes used by two or more sessions (system prompts, shared documents).

A request's *shared prefix* is its leading blocks whose node two or more sessions reference (a
node's ancestors are referenced by the same requests, so these blocks are a leading run); its
*group* is the deepest such node. A group's popularity is the sessions whose first turn starts
with it; its length is its depth in blocks.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.reuse.blocks import Refs


def _q(x: np.ndarray, q: float) -> float | None:
    return float(np.quantile(x, q)) if len(x) else None


def tree_shape(refs: Refs) -> dict:
    """Roots, nodes, depth (blocks per request) and fan-out (distinct children per inner node)."""
    if not len(refs.pid):
        return {"nodes": 0, "roots": 0}
    first = np.ones(len(refs.req), dtype=bool)
    first[1:] = refs.req[1:] != refs.req[:-1]
    parent = np.where(first, np.uint64(0), np.concatenate([[np.uint64(0)], refs.pid[:-1]]))
    edges = pl.DataFrame({"parent": parent[~first], "child": refs.pid[~first]}).unique()
    fan = edges.group_by("parent").len()["len"].to_numpy()
    depth = np.bincount(refs.req - refs.req[0])
    depth = depth[depth > 0]
    return {"nodes": int(len(np.unique(refs.pid))), "roots": int(len(np.unique(refs.pid[first]))),
            "depth_p50_blocks": _q(depth, 0.5), "depth_p90_blocks": _q(depth, 0.9), "depth_max_blocks": int(depth.max()),
            "inner_nodes": int(len(fan)), "fanout_mean": float(fan.mean()) if len(fan) else None,
            "fanout_p90": _q(fan, 0.9), "fanout_max": int(fan.max()) if len(fan) else None,
            "branching_share": float(np.mean(fan > 1)) if len(fan) else None}


def shared_prefixes(refs: Refs, session: np.ndarray) -> tuple[np.ndarray, pl.DataFrame, np.ndarray]:
    """(shared-prefix blocks per request; groups table: depth, sessions, first turns, requests,
    references, the row of the group's first request (`example`, which names the group: a request
    is under one group at most) and the share of the trace's block references under the group,
    most popular first (sessions, requests, then `example`: the order reuse_group_head.sql gives
    on either engine); per request, its group's `example` (-1: none))."""
    n = len(session)
    sess = session[refs.req]
    per_node = (pl.DataFrame({"pid": refs.pid, "s": sess}).group_by("pid").agg(pl.col("s").n_unique().alias("sessions")))
    shared = (pl.DataFrame({"pid": refs.pid}).join(per_node, on="pid", how="left", maintain_order="left")
              ["sessions"].to_numpy() >= 2)
    shared_blocks = np.bincount(refs.req[shared], minlength=n)
    has = shared_blocks > 0
    group = request_groups(refs, shared_blocks)
    blocks = np.bincount(refs.req, minlength=n)
    is_first = np.zeros(n, dtype=bool)
    is_first[np.unique(session, return_index=True)[1]] = True
    frame = pl.DataFrame({"pid": group[has], "depth_blocks": shared_blocks[has], "s": session[has],
                          "first": is_first[has], "refs": blocks[has], "r": np.flatnonzero(has)})
    frame = frame.with_columns(example=pl.col("r").min().over("pid"))
    total = max(int(blocks.sum()), 1)
    groups = (frame.group_by("example").agg(pl.col("depth_blocks").first(), pl.col("s").n_unique().alias("sessions"),
                                            pl.col("first").sum().alias("first_turns"), pl.len().alias("requests"),
                                            pl.col("refs").sum().alias("references"))
              .select(*[pl.col(c).cast(pl.Int64) for c in ("depth_blocks", "sessions", "first_turns", "requests",
                                                           "references", "example")])
              .sort(["sessions", "requests", "example"], descending=[True, True, False]))
    # numpy's division (Polars divides a column by a scalar through its reciprocal: a last bit off the SQL's)
    groups = groups.with_columns(reference_share=pl.Series(groups["references"].to_numpy() / total, dtype=pl.Float64))
    example = np.full(n, -1, np.int64)
    example[has] = frame["example"].to_numpy()
    return shared_blocks, groups, example


def request_groups(refs: Refs, shared_blocks: np.ndarray) -> np.ndarray:
    """Per request, the prefix id of its deepest shared block (its group's; 0: none)."""
    n = len(shared_blocks)
    has = shared_blocks > 0
    starts = np.searchsorted(refs.req, np.arange(n))
    group = np.zeros(n, dtype=np.uint64)
    group[has] = refs.pid[starts[has] + shared_blocks[has] - 1]
    return group


def top_shares(groups: pl.DataFrame, ks=(1, 5, 10)) -> dict[str, float]:
    """Share of all block references made by requests under the k most popular shared prefixes."""
    return {str(k): float(groups["reference_share"].head(k).sum()) for k in ks}


def group_owners(refs: Refs, groups: pl.DataFrame) -> list[list[list[int]]]:
    """Per group (in `groups` order), its prefix as runs [first block, owner]: the owner of a
    block is the first group (in that order) whose prefix holds the same node, so groups that
    share a deeper part of their prefixes (a system prompt, then a shared document) share
    those blocks when generated."""
    if not groups.height:
        return []
    g = groups.with_row_index("g").select("g", "example", "depth_blocks")
    ex = g["example"].to_numpy()
    at = np.isin(refs.req, ex)
    path = (pl.DataFrame({"example": refs.req[at], "pos": refs.pos[at].astype(np.int64), "pid": refs.pid[at]})
            .join(g, on="example").filter(pl.col("pos") < pl.col("depth_blocks")))
    path = path.with_columns(owner=pl.col("g").min().over("pid")).sort(["g", "pos"])
    runs = path.filter((pl.col("owner") != pl.col("owner").shift(1).over("g")) | (pl.col("pos") == 0))
    out: list[list[list[int]]] = [[] for _ in range(groups.height)]
    for gi, pos, owner in zip(runs["g"].to_list(), runs["pos"].to_list(), runs["owner"].to_list()):
        out[gi].append([int(pos), int(owner)])  # a loop over runs (a few per group), not blocks
    return out
