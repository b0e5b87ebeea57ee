"""Traces with known block reuse and sessions (ground truth for the reuse and session tests)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from test_stages_support import canonical


def session_trace(n_sessions: int = 400, block: int = 16, groups: int = 5, seed: int = 0,
                  think_s: float = 30.0, latency_s: float | None = None):
    """Multi-turn sessions, each starting with one of `groups` shared system prompts (Zipf
    popularity, whole blocks) or none; turn t+1's input = turn t's input + output + a new prompt
    (>= one block, so every turn adds a full block). Block ids are content ids: a full block of
    a session's context keeps its id, a partial last block is unique. Returns (table, truth)."""
    rng = np.random.default_rng(seed)
    turns = rng.geometric(0.4, n_sessions)
    start = np.cumsum(rng.exponential(20.0, n_sessions))
    pop = 1 / np.arange(1, groups + 1)
    group = np.where(rng.random(n_sessions) < 0.7, rng.choice(groups, n_sessions, p=pop / pop.sum()), -1)
    sys_blocks = (np.arange(groups) + 2) * 3
    rows = []
    for s in range(n_sessions):  # a test fixture: clarity over speed
        t, ctx = start[s], (sys_blocks[group[s]] * block if group[s] >= 0 else 0)
        for k in range(turns[s]):
            new = int(rng.integers(block, 6 * block))
            inp = ctx + new
            out = int(rng.integers(1, 3 * block))
            full = inp // block
            ids = [("g", int(group[s]), j) if group[s] >= 0 and j < sys_blocks[group[s]] else ("s", s, j)
                   for j in range(full)]
            if inp % block:
                ids.append(("p", s, k))
            lat = latency_s if latency_s is not None else np.nan
            rows.append((t, s, k + 1, inp, out, ids, lat))
            t += (latency_s or 0.0) + rng.exponential(think_s)
            ctx = inp + out
    keys = {}
    hash_ids = [[keys.setdefault(i, len(keys)) for i in r[5]] for r in rows]
    arrival = np.array([r[0] for r in rows])
    order = np.argsort(arrival, kind="stable")
    table = canonical(arrival, input_tokens=np.array([r[3] for r in rows]), output_tokens=np.array([r[4] for r in rows]),
                      latency_s=np.array([r[6] for r in rows]))
    table = table.append_column("hash_ids", pa.array([hash_ids[i] for i in order], pa.list_(pa.int64())))
    truth = pl.DataFrame({"session": [rows[i][1] for i in order], "turn": [rows[i][2] for i in order],
                          "group": group[[rows[i][1] for i in order]]})
    return table, truth
