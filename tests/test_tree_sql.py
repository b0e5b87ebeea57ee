"""The prefix tree's shape and the shared-prefix groups as set-based SQL (sql/reuse/reuse_tree.sql,
reuse_shared.sql, reuse_groups.sql, ...; reuse/tree_sql.py) on DuckDB: equal to a direct count over
the block lists on a trace with planted groups (known popularity, lengths, a shared system prompt
under two documents and a tie broken by the first request's row), equal to numpy (reuse/tree.py)
there and on Mooncake, and the bundle's prefix model made from either is the same."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import polars as pl
import pytest

from reuse_traces import with_blocks
from servetrace import io
from servetrace.bundle import session_sql
from servetrace.bundle.prefix_model import prefix_model, prefix_model_on
from servetrace.reuse.aggregates import analyze_on
from servetrace.reuse.analysis import analyze
from servetrace.reuse.tree_sql import with_groups
from servetrace.settings import SessionModelSettings, Settings
from servetrace.stages.prefix import session_codes
from test_reuse_sql import mooncake  # noqa: F401
from test_session_sql import assert_close, connected

BLOCK = 16
SYS = [("sys", j) for j in range(3)]
# (the shared prefix's content, sessions starting under it): a system prompt under two documents,
# two groups of 25 sessions x 2 turns (a tie of sessions and requests), a prefix of one session
# (not shared), sessions without one
PLANTED = [(SYS + [("docA", j) for j in range(4)], 40), (SYS + [("docB", j) for j in range(2)], 25),
           ([("own7", j) for j in range(7)], 25), ([("own12", j) for j in range(12)], 10),
           ([("own2", j) for j in range(2)], 3), ([("own5", j) for j in range(5)], 1), ([], 30)]


def planted_trace(seed: int = 0, ids: bool = True):
    """(table, each request's session label): every session two turns, the second its first's
    blocks and more; input tokens whole blocks, so prefix chains recover the sessions."""
    rng = np.random.default_rng(seed)
    rows, s = [], 0
    for content, n in PLANTED:
        for _ in range(n):  # a test fixture: clarity over speed
            t0, a, b = rng.uniform(0, 10_000), int(rng.integers(1, 4)), int(rng.integers(1, 4))
            first = content + [("s", s, j) for j in range(a)]
            second = first + [("s", s, a + j) for j in range(b)]
            rows += [(t0, f"s{s}", len(first) * BLOCK, first), (t0 + rng.uniform(1, 100), f"s{s}", len(second) * BLOCK, second)]
            s += 1
    table, order = with_blocks(rows, 3, input_tokens=np.array([r[2] for r in rows]),
                               output_tokens=np.ones(len(rows), np.int64),
                               **({"session_id": [r[1] for r in rows]} if ids else {}))
    return table, [rows[i][1] for i in order]


def direct(table, label: list) -> tuple[dict, pl.DataFrame]:
    """The tree's shape and the groups table by plain counting over the block lists: a node is a
    tuple of leading ids, a request's shared prefix its leading nodes two or more sessions hold."""
    lists = table["hash_ids"].to_pylist()
    holders, children = defaultdict(set), defaultdict(set)
    for r, ids in enumerate(lists):
        for k in range(len(ids)):
            holders[tuple(ids[:k + 1])].add(label[r])
            if k:
                children[tuple(ids[:k])].add(tuple(ids[:k + 1]))
    depth = np.array([len(x) for x in lists if x])
    fan = np.array([len(v) for v in children.values()])
    shape = {"nodes": len(holders), "roots": len({x[0] for x in lists if x}),
             "depth_p50_blocks": float(np.quantile(depth, 0.5)), "depth_p90_blocks": float(np.quantile(depth, 0.9)),
             "depth_max_blocks": int(depth.max()), "inner_nodes": len(fan), "fanout_mean": float(fan.mean()),
             "fanout_p90": float(np.quantile(fan, 0.9)), "fanout_max": int(fan.max()),
             "branching_share": float(np.mean(fan > 1))}
    first_row = {}
    for r, s in enumerate(label):
        first_row.setdefault(s, r)
    groups = {}
    for r, ids in enumerate(lists):
        k = 0
        while k < len(ids) and len(holders[tuple(ids[:k + 1])]) >= 2:
            k += 1
        if k:
            g = groups.setdefault(tuple(ids[:k]), {"depth_blocks": k, "sessions": set(), "first_turns": 0,
                                                   "requests": 0, "references": 0, "example": r})
            g["sessions"].add(label[r])
            g["first_turns"] += first_row[label[r]] == r
            g["requests"] += 1
            g["references"] += len(ids)
    total = sum(len(x) for x in lists)
    frame = pl.DataFrame([{**g, "sessions": len(g["sessions"]), "reference_share": g["references"] / total}
                          for g in groups.values()]).sort(["sessions", "requests", "example"], descending=[True, True, False])
    return shape, frame.select(pl.exclude("reference_share").cast(pl.Int64), "reference_share")


def on_sql(path, by_ids: bool, t: SessionModelSettings = SessionModelSettings()):
    """(the SQL's reuse analysis with its tree and groups, its prefix model) on DuckDB."""
    with connected(path, Settings()) as con:
        reuse = analyze_on(con)
        assert session_sql.has_keys(con, reuse, by_ids)
        with_groups(reuse, con, io.parquet_rows(path), by_ids, 50, t.max_groups)
        return reuse, prefix_model_on(con, reuse, t)


def assert_values_equal(got: dict, want: dict) -> None:
    """The findings' `tree` and `shared_prefix`: counts equal, floats within 1e-12 (quantiles
    interpolate by another formula)."""
    for part in ("tree", "shared_prefix"):
        for k, v in want[part].items():
            if isinstance(v, dict):
                assert got[part][k] == pytest.approx(v, rel=1e-12), (part, k)
            elif isinstance(v, float):
                assert got[part][k] == pytest.approx(v, rel=1e-12), (part, k)
            else:
                assert got[part][k] == v, (part, k)


@pytest.mark.parametrize("ids", [True, False])
def test_planted_groups_recovered(tmp_path, ids):
    """Session ids, or sessions inferred from prefix chains: the SQL and numpy give the direct
    count's tree and groups, the planted popularity and lengths in order (the tie of 25 sessions
    and 50 requests broken by the first request's row), and the same prefix model, whose second
    group's system prompt is owned by the first group."""
    table, label = planted_trace(ids=ids)
    path = tmp_path / "requests.parquet"
    io.write_parquet(path, table, {})
    shape, want = direct(table, label)
    planted = [(len(c), n) for c, n in PLANTED if c and n >= 2]
    assert sorted(zip(want["depth_blocks"], want["first_turns"])) == sorted(planted)
    assert want["first_turns"].to_list() == [40, 25, 25, 10, 3] and want["requests"].to_list() == [80, 50, 50, 20, 6]
    numpy = analyze(path, sessions=session_codes(path) if ids else None)
    got, model = on_sql(path, ids)
    assert got.groups.equals(want) and numpy.groups.equals(want)
    assert got.values["tree"] == pytest.approx(shape, rel=1e-12) and numpy.values["tree"] == pytest.approx(shape, rel=1e-12)
    assert_values_equal(got.values, numpy.values)
    assert got.values["shared_prefix"]["groups"] == 5
    shared = sum(2 * n for c, n in PLANTED if c and n >= 2)
    assert got.values["shared_prefix"]["request_share"] == shared / table.num_rows
    assert model == prefix_model(numpy, SessionModelSettings())
    # the document groups: the first (40 sessions) owns the system prompt the 25-session one shares
    docb = want["example"].to_list().index(want.filter(pl.col("depth_blocks") == 5)["example"][0])
    assert model["groups"]["owners"][0] == [[0, 0]]
    assert model["groups"]["owners"][docb] == [[0, 0], [3 * BLOCK, docb]]
    assert model["groups"]["tokens"] == (want["depth_blocks"] * BLOCK).to_list()
    assert model["groups"]["popularity"] == pytest.approx([n / 103 for n in (40, 25, 25, 10, 3)], rel=1e-12)


def test_equal_to_numpy_on_mooncake(mooncake):  # noqa: F811
    """Mooncake (122 k references, sessions inferred): the same tree, groups and prefix model."""
    numpy = analyze(mooncake)
    got, model = on_sql(mooncake, False)
    assert numpy.groups.height > 50 and numpy.values["tree"]["inner_nodes"] > 1000
    assert got.groups.equals(numpy.groups.head(got.groups.height))
    assert_values_equal(got.values, numpy.values)
    assert model == prefix_model(numpy, SessionModelSettings())


def test_sessions_finding_from_sql_keys_equals_numpys(mooncake):  # noqa: F811
    """The sessions stage on the SQL's keys (sql/sessions/inferred_sessions.sql, as on Spark) gives
    numpy's chains' finding and tables on Mooncake (floats within 1e-12 and 1e-9: sums in another order)."""
    from servetrace import grouping
    from servetrace.stages import sql
    from servetrace.stages.context import Context, sql_variables
    from servetrace.stages.quality import trace_profile
    from servetrace.stages.sessions import sessions

    found = []
    for keyed in (False, True):
        with sql.connect(mooncake) as con:
            profile = trace_profile(con)
            ctx = Context(Settings(), profile, grouping.from_profile(profile, None), {}, True)
            sql.set_variables(con, sql_variables(ctx))
            sql.run_sql(con, "stg_requests")
            reuse = analyze(mooncake)
            if keyed:
                reuse = analyze_on(con)
                assert session_sql.has_keys(con, reuse, False)
                with_groups(reuse, con, ctx.rows, False, 50, 200)
                assert reuse.keyed and reuse.parent is None
            found.append(sessions(con, ctx, reuse))
    (want, want_tables), (got, got_tables) = found
    assert_close(got.values, want.values)
    assert want.values["sessions"] > 2000
    for name, table in want_tables.items():
        for col in table.columns:
            x, y = table[col], got_tables[name][col]
            assert x.is_null().to_list() == y.is_null().to_list(), (name, col)
            assert y.drop_nulls().to_list() == pytest.approx(x.drop_nulls().to_list(), rel=1e-9, nan_ok=True), (name, col)
