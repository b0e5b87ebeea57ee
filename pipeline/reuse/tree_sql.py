"""The prefix tree's shape and the shared-prefix groups as set-based SQL (sql/reuse/reuse_tree.sql,
reuse_shared.sql, reuse_groups.sql and the files that read them), on either engine's connection
after `session_sql.has_keys` (`reuse_refs`, `session_keys`): what comes back to the driver is the
tree's and the groups' summary, the most popular groups, each model group's runs of owners and
sessions per (client, group). Equal to reuse/tree.py's numpy forms: the groups are named by the
row of their first request (`example`) and ordered by sessions, requests, then that row, on both
(tests/test_tree_sql.py; test_spark_reuse.py on Spark)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from servetrace.stages import sql

GROUP_COLUMNS = ("depth_blocks", "sessions", "first_turns", "requests", "references", "example")
TREE_INTS = ("nodes", "roots", "depth_max_blocks", "inner_nodes", "fanout_max")


def _num(x):
    return None if x is None else float(x)


def with_groups(reuse, con, rows: int, by_ids: bool, head: int, model: int):
    """`reuse` (reuse/aggregates.py's, after `session_sql.has_keys` on `con`) with the findings'
    `tree` and `shared_prefix` and the groups `groups_on` keeps (`head`: at least the 10 of
    `top_shares`), all by SQL: `analysis.with_tree`'s, without reading a reference."""
    reuse.values["tree"] = tree_on(con)
    groups, summary = groups_on(con, reuse.block_size, max(head, 10), model)
    reuse.groups, reuse.keyed = groups, True
    basis = "session ids" if by_ids else "inferred from prefix chains"
    reuse.values["shared_prefix"] = shared_prefix_values(groups, summary, rows, basis)
    return reuse


def tree_on(con) -> dict:
    """reuse/tree.py `tree_shape`'s values, from reuse_tree.sql."""
    row = sql.table(con, "reuse_tree").row(0, named=True)
    if not row["nodes"]:
        return {"nodes": 0, "roots": 0}
    return {k: (None if v is None else int(v)) if k in TREE_INTS else _num(v) for k, v in row.items()}


def groups_on(con, block_size: int, head: int, model: int) -> tuple[pl.DataFrame, dict]:
    """(the groups `reuse_group_head` keeps, in order, with reuse/tree.py `shared_prefixes`' columns;
    the groups' summary). `head`: the most popular kept; `model`: of those with a first turn, kept."""
    sql.set_variables(con, {"reuse_block_size": int(block_size), "reuse_group_head": int(head),
                            "reuse_group_model": int(model)})
    sql.run_sql(con, "reuse_groups")
    summary = summary_on(con)
    top = sql.table(con, "reuse_group_head").rename({"refs": "references"})
    groups = (top.select(*[pl.col(c).cast(pl.Int64) for c in GROUP_COLUMNS], pl.col("reference_share").cast(pl.Float64))
              .sort(["sessions", "requests", "example"], descending=[True, True, False]))
    return groups, summary


def summary_on(con) -> dict:
    """reuse_group_summary.sql's row (after `groups_on`)."""
    return sql.table(con, "reuse_group_summary").row(0, named=True)


def shared_prefix_values(groups: pl.DataFrame, summary: dict, rows: int, basis: str) -> dict:
    """The findings' `shared_prefix` from `groups_on`."""
    from servetrace.reuse.tree import top_shares

    q = {k: _num(summary[f"depth_tokens_{k}"]) for k in ("mean", "p50", "p90")}
    return {"groups": int(summary["groups"] or 0),
            "request_share": int(summary["shared_requests"] or 0) / rows if rows else None,
            "top_reference_share": top_shares(groups),
            "depth_tokens": q, "sessions_basis": basis}


def register_model_groups(con, groups: pl.DataFrame) -> None:
    """`reuse_model_groups` (g, example, depth_blocks): the prefix model's groups, in order."""
    con.register("reuse_model_groups", pa.table({
        "g": pa.array(np.arange(groups.height), pa.int64()),
        "example": pa.array(groups["example"].to_numpy(), pa.int64()),
        "depth_blocks": pa.array(groups["depth_blocks"].to_numpy(), pa.int64())}))


def owners_on(con, n_groups: int) -> list[list[list[int]]]:
    """reuse/tree.py `group_owners` of `reuse_model_groups`, from reuse_group_owners.sql."""
    runs = sql.table(con, "reuse_group_owners", "g, pos")
    out: list[list[list[int]]] = [[] for _ in range(n_groups)]
    for gi, pos, owner in zip(runs["g"].to_list(), runs["pos"].to_list(), runs["owner"].to_list()):
        out[int(gi)].append([int(pos), int(owner)])  # a loop over runs (a few per group), not blocks
    return out


def client_groups_on(con) -> pl.DataFrame:
    """Sessions per (bundle client, model group; -1: none), after `session_first_clients`."""
    sql.run_sql(con, "session_first_clients")
    return sql.table(con, "reuse_client_groups", "client, g").select(pl.all().cast(pl.Int64))
