"""The bundle's prefix model (schema v2 `prefix`, described in bundle/sessions.py): the most popular
shared-prefix groups with a first turn, their lengths, popularity, owners and the per-client
groups, from the block reuse analysis' groups: numpy's (reuse/tree.py, every reference on the
driver) or, on an engine's connection, the set-based SQL's (reuse/tree_sql.py: only the groups'
head, the owners' runs and counts per (client, group) reach the driver). The two give the same
model (tests/test_tree_sql.py)."""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.reuse import tree_sql
from servetrace.reuse.analysis import Reuse
from servetrace.reuse.tree import group_owners
from servetrace.settings import SessionModelSettings


def client_prefix(counts: pl.DataFrame, n_clients: int, client_min: int = SessionModelSettings.client_min) -> list:
    """Per bundle client, its own prefix model where it started `client_min` sessions or more
    (`sessions`, `grouped_share`, `groups`: indices into the trace's groups, `popularity` over
    them), else null (the pooled model). `counts`: sessions per (first request's `client`, `g`: its
    group's index, -1: none)."""
    out = [None] * n_clients
    counts = counts.filter(pl.col("client") >= 0)
    n = np.bincount(counts["client"].to_numpy(), weights=counts["sessions"].to_numpy(), minlength=n_clients)
    n = n.astype(np.int64)
    for c in np.flatnonzero(n >= client_min):  # a loop over clients (at most the fit's 256)
        own = counts.filter((pl.col("client") == c) & (pl.col("g") >= 0)).sort("g")
        k = int(own["sessions"].sum())
        out[int(c)] = {"sessions": int(n[c]), "grouped_share": float(k / n[c]), "groups": own["g"].to_list(),
                       "popularity": (own["sessions"].to_numpy() / max(k, 1)).tolist()}
    return out


def model_of(groups: pl.DataFrame, owners: list, sessions: int, block_size: int,
             counts: pl.DataFrame | None = None, n_clients: int = 0,
             client_min: int = SessionModelSettings.client_min) -> dict:
    """The prefix model of the model groups (`groups`, in order), their owners' runs [first block,
    owner], the trace's sessions and, for per-client groups, `client_prefix`'s counts."""
    pop = groups["first_turns"].to_numpy().astype(float)
    model = {"block_size": block_size, "grouped_share": float(pop.sum() / max(sessions, 1)),
             "grouped_sessions": int(pop.sum()),
             "groups": {"tokens": (groups["depth_blocks"].to_numpy() * block_size).tolist(),
                        "popularity": (pop / pop.sum()).tolist() if pop.sum() else [],
                        "owners": [[[b * block_size, o] for b, o in runs] for runs in owners]},
             "zipf": None}
    if len(pop) >= 3:
        rank = np.arange(1, len(pop) + 1)
        slope = float(np.polyfit(np.log(rank), np.log(pop), 1)[0])
        fitted = rank ** slope
        model["zipf"] = {"s": -slope, "ks": float(np.abs(np.cumsum(fitted / fitted.sum()) - np.cumsum(pop / pop.sum())).max())}
    if counts is not None:
        model["clients"] = client_prefix(counts, n_clients, client_min)
    return model


def prefix_model(reuse: Reuse, t: SessionModelSettings, index: tuple | None = None) -> dict:
    """From numpy's groups (`reuse.groups` with `refs`, `session`, `group_rows`); `index`:
    (the bundle client of each request, clients) for per-client groups."""
    g = reuse.groups.filter(pl.col("first_turns") > 0).head(t.max_groups)
    counts = None
    if index is not None:
        first = np.unique(reuse.session, return_index=True)[1]
        position = dict(zip(g["example"].to_list(), range(g.height)))
        group = pl.Series(reuse.group_rows[first]).replace_strict(position, default=-1, return_dtype=pl.Int64)
        counts = (pl.DataFrame({"client": pl.Series(index[0][first]).cast(pl.Int64), "g": group})
                  .group_by("client", "g").agg(pl.len().cast(pl.Int64).alias("sessions")))
    return model_of(g, group_owners(reuse.refs, g), len(np.unique(reuse.session)), reuse.block_size, counts,
                    index[1] if index is not None else 0, t.client_min)


def prefix_model_on(con, reuse: Reuse, t: SessionModelSettings, n_clients: int | None = None) -> dict:
    """From the set-based SQL's groups on `con` (after `session_sql.has_keys`; reuse_of made them
    already when `reuse.keyed`); `n_clients`: the bundle's clients (`bundle_clients` registered)
    for per-client groups."""
    if reuse.keyed:
        head = reuse.groups
        sessions = int(tree_sql.summary_on(con)["sessions"])
    else:
        head, summary = tree_sql.groups_on(con, reuse.block_size, 0, t.max_groups)
        sessions = int(summary["sessions"])
    g = head.filter(pl.col("first_turns") > 0).head(t.max_groups)
    tree_sql.register_model_groups(con, g)
    counts = tree_sql.client_groups_on(con) if n_clients is not None else None
    return model_of(g, tree_sql.owners_on(con, g.height), sessions, reuse.block_size, counts, n_clients or 0,
                    t.client_min)
