"""sql/ as Spark SQL: every stage file transpiles (sqlglot) with the run's variables bound, and the
rewrites that keep Spark's numbers equal to DuckDB's are in place. No Spark needed."""

from __future__ import annotations

import pytest

sqlglot = pytest.importorskip("sqlglot", reason="the spark extra (sqlglot) is not installed")

from servetrace import grouping  # noqa: E402
from servetrace.resources import SQL_DIR  # noqa: E402
from servetrace.reuse.aggregates import POWERS  # noqa: E402
from servetrace.spark.transpile import to_spark, to_spark_steps  # noqa: E402
from servetrace.stages.sql import sql_text  # noqa: E402

VARIABLES = {"t0_s": 12.5, "t1_s": 86400.0, "window_s": 600.0, "seed": 0,
             **grouping.parse("model,service").sql_variables(), "jitter_s": 1.0, "idc_scales": [1.0, 10.0, 60.0, 600.0], "sample_p": 0.25, "grid_every": 1,
             "per_window_n": 500, "max_groups": 1000, "max_groups_detail": 20, "rate_bin_s": 3600.0,
             "drift_bin_s": 86400.0, "origin_weekday": 3, "drift_bins_per_decade": 50,
             # the bundle fit's (sql/fit/, servetrace/bundle/fit_sql.py)
             "fit_max_clients": 256, "fit_other": "(other)", "fit_g0": 0, "fit_inv_window": 1 / 600,
             "fit_inv_dataset": 1 / 21600, "iat_floor_s": 1e-6, "fit_ks_sample": 20000, "fit_category": "reason",
             "fit_reason_bins": 500.0, "fit_bin_s": 1.0, "fit_head_rows": 1000000, "fit_client": 0, "fit_clock_s": 1.0,
             # the prefix-reuse analysis' (sql/reuse/, servetrace/reuse/aggregates.py)
             "reuse_factors": [1, 4, 32], "reuse_block_size": 16, "reuse_seed": 0, "reuse_powers": POWERS,
             "reuse_sample_size": 100000, "reuse_bits": list(range(21)), "reuse_group_head": 50, "reuse_group_model": 200,
             # the session model's requests' (sql/sessions/, servetrace/bundle/session_sql.py)
             "session_keep": 1000000, "session_client_default": -1, "session_g0": 0.0, "session_bin_s": 60.0,
             "session_head_rows": 1000000,
             # the session model's statistics' (servetrace/bundle/session_stats.py)
             "session_origin": 0.0, "session_span": 3600.0, "session_lag": 30.0, "session_burn": 1e300,
             "session_tail": True, "session_probs": [0.0, 0.5, 1.0], "session_share_origin": 0.0,
             "session_share_bin_s": 60.0, "session_share_bins": 60}
FILES = sorted(p.stem for p in SQL_DIR.glob("*/*.sql") if p.parent.name not in ("ingest", "agents"))


@pytest.mark.parametrize("name", FILES)
def test_every_stage_file_is_spark_sql(name):
    steps = to_spark_steps(name, sql_text(name), VARIABLES)
    assert steps[-1][0] == name
    for view, query in steps:
        assert "GETVARIABLE" not in query.upper() and "GROUP_KEY_OF" not in query.upper(), view
        sqlglot.parse_one(query, read="spark")  # Spark SQL that parses back


def test_variables_become_literals_and_fractions_doubles():
    out = to_spark("select getvariable('t0_s') + 0.5 as a, getvariable('group_by') as b, "
                   "getvariable('idc_scales') as c from t", VARIABLES)
    # Spark reads 0.5 as a decimal, whose arithmetic rounds to a fixed scale: cast to double as DuckDB reads it
    assert "CAST(12.5 AS DOUBLE) + CAST(0.5 AS DOUBLE)" in out
    assert "'model,service' AS b" in out and "ARRAY(CAST(1.0 AS DOUBLE)" in out
    with pytest.raises(KeyError, match="window_s"):
        to_spark("select getvariable('window_s')", {})


def test_rewrites_that_keep_numbers_equal():
    out = to_spark("select floor(log10(x) * 20) as a, log2(x) as b, quantile_cont(x, [0.5, 0.9]) as q, "
                   "hash(row_id, 7) / 18446744073709551616.0 as u from t group by all", {})
    assert "LOG10(x)" in out and "LOG2(x)" in out  # not LOG(10, x) = ln x / ln 10 (2.9999999999999996 at 1000)
    assert "PERCENTILE(x, ARRAY(" in out  # linear interpolation, as quantile_cont
    assert "XXHASH64(row_id, 7) + 9.223372036854776e+18" in out  # a uniform on [0, 1) from a 64-bit hash
    assert "GROUP BY ALL" not in out.upper()


def test_xor_keeps_its_grouping():
    # Spark's ^ binds looser than +: xor(a, b) + c must not become a ^ (b + c)
    out = to_spark("select xor(a, b) + c as x, (a >> 16) * 3 as y from t", {})
    assert "(a ^ b) + c" in out and "(SHIFTRIGHT(a, 16)) * 3" in out


def test_macros_expand_with_their_arguments():
    out = to_spark("select group_key_of(m, s, key_part) as g from t", grouping.parse("model").sql_variables())
    assert "GROUP_KEY_OF" not in out.upper() and "CONCAT_WS('|', key_part, CASE WHEN TRUE THEN m END" in out
    assert "CASE WHEN FALSE THEN s END" in out  # the macro's parameters replaced by the call's arguments


def test_ctes_become_named_steps():
    steps = to_spark_steps("x", "with a as (select 1 as v), b as (select v from a) select * from b", {})
    assert [view for view, _ in steps] == ["x__a", "x__b", "x"]
    assert "FROM x__a AS a" in steps[1][1] and "FROM x__b AS b" in steps[2][1]


def test_the_agent_models_statements_are_spark_sql():
    """bundle/agents.py's templates, filled in as it fills them, transpile with no DuckDB-only join
    or ordering left (ASOF JOIN, ORDER BY ALL)."""
    from servetrace.bundle.agents import GAP, MAIN, SUB
    from servetrace.resources import statement

    probs = [0.0, 0.5, 1.0]
    fanout = statement("agents/fanout", sub=SUB)
    for name, parts in (("counts", {"main": MAIN, "sub": SUB}), ("pmfs", {"main": MAIN, "sub": SUB, "fanout": fanout}),
                        ("quantile_functions", {"gap": GAP, "main": MAIN, "sub": SUB, "probs": probs}),
                        ("session_starts", {"main": MAIN, "window_s": 600.0}), ("subagent_levels", {"sub": SUB}),
                        ("subagent_start", {"sub": SUB, "probs": probs}),
                        ("client_sessions", {"main": MAIN, "window_s": 600.0}),
                        ("client_kinds", {"main": MAIN, "sub": SUB}),
                        ("call_clients", {"label": "concat_ws('|', coalesce(cast(\"model\" as varchar), '(none)'))",
                                          "names": "('a''b', 0), ('c', 1)", "default": -1})):
        out = to_spark(statement(f"agents/{name}", **parts), {})
        assert "ASOF" not in out.upper() and "ORDER BY ALL" not in out.upper(), name
        assert "PERCENTILE(" in out or "quantile_cont" not in statement(f"agents/{name}", **parts), name
        sqlglot.parse_one(out, read="spark")


def test_cast_guard_only_where_the_operand_may_be_text():
    """TRY_CAST to double or boolean is guarded (null where Spark would strip end characters that
    DuckDB keeps) when its operand may be text, and not when it is known to be a number or a flag."""
    types = {"d": "double", "b": "boolean", "n": "void", "s": "string", "k": "bigint"}
    guarded = ["cast(c as varchar)", "c", "s", "' 5'", "coalesce(d, s)", "trim(s)"]
    plain = ["d", "b", "n", "k", "d * 1000.0", "-d", "coalesce(b, k = 0)", "k = 0", "not b", "'Infinity'",
             "cast(s as double)", "(d)", "null"]
    for operand in guarded + plain:
        for kind in ("double", "boolean"):
            out = to_spark(f"select try_cast({operand} as {kind}) as v from t", {}, types)
            assert ("ASCII(" in out) == (operand in guarded), (operand, kind, out)
    assert "ASCII(" in to_spark("select try_cast(d as double) as v from t", {})  # no types: unknown, guarded


def test_cast_guard_nulls_the_characters_the_engines_strip_apart():
    """The double guard's condition, evaluated for every ASCII character before or after a digit,
    is true exactly for those Spark strips and DuckDB does not (0-8, 14-31)."""
    import duckdb

    out = to_spark("select try_cast(x as double) as v from t", {})
    condition = out[out.index("CASE WHEN ") + len("CASE WHEN "):out.index(" THEN NULL")]
    apart = set(range(9)) | set(range(14, 32))
    con = duckdb.connect()
    for code in range(1, 128):
        for x in (chr(code) + "5", "5" + chr(code)):
            assert con.execute(f"select {condition} from (select ? as x)", [x]).fetchone()[0] == (code in apart), code
    assert con.execute(f"select {condition} from (select '' as x)").fetchone()[0]  # Spark's ASCII('') is 0 too
