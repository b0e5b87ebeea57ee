"""Sessions inferred from prefix chains (traces without session ids, e.g. Mooncake).

A request r *continues* an earlier request q when r's blocks start with every full block of q
(q's input tokens // block size of them; q's last, partial block holds text that r's next turn
rewrites into a full block): r's context is q's prompt, then more. r's parent is the latest
such q with the deepest match; a session is a chain of parents from a request that continues
none. A request whose only full blocks are a shared system prompt links to the next one that
shares it: the statement says the sessions are inferred.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.reuse.blocks import Refs


def infer_parents(refs: Refs, input_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(parent request index or -1, blocks reused from the parent) per request, from unsampled refs."""
    n = len(input_tokens)
    full = np.asarray(input_tokens, dtype=np.int64) // refs.block_size
    starts = np.searchsorted(refs.req, np.arange(n))
    counts = np.bincount(refs.req, minlength=n)
    has_key = (full > 0) & (full <= counts)
    keys = pl.DataFrame({"pid": refs.pid[starts[has_key] + full[has_key] - 1], "q": np.flatnonzero(has_key),
                         "key_blocks": full[has_key]})
    left = pl.DataFrame({"pid": refs.pid, "r": refs.req, "pos": refs.pos.astype(np.int64)})
    matched = (left.join_asof(keys, left_on="r", right_on="q", by="pid", strategy="backward",
                              allow_exact_matches=False, check_sortedness=False)
               .filter(pl.col("q").is_not_null())
               .sort(["r", "pos", "q"]).group_by("r", maintain_order=True).last())
    parent = np.full(n, -1, dtype=np.int64)
    reused = np.zeros(n, dtype=np.int64)
    parent[matched["r"].to_numpy()] = matched["q"].to_numpy()
    reused[matched["r"].to_numpy()] = matched["pos"].to_numpy() + 1
    return parent, reused


def session_roots(parent: np.ndarray) -> np.ndarray:
    """The first request of each request's chain (pointer doubling: log2(depth) numpy passes)."""
    root = np.where(parent < 0, np.arange(len(parent)), parent)
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            return root
        root = nxt
