"""The bundle's agent model (sql/agents/, bundle/agents.py) made by Spark equals DuckDB's on the agent
fixtures (Claude Code traces, Copilot, TraceLab), the planted trace of tests/test_agent_sql.py
(nested subagents, per-model clients) and the agent mix trace: every count, PMF and quantile
within float tolerance, every string and list length equal. `fit --engine spark` makes it on its
own connection, and gives the streamed DuckDB fit's model."""

from __future__ import annotations

import shutil

import numpy as np
import polars as pl
import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install 'servetrace[spark]')")
if shutil.which("java") is None:
    pytest.skip("no Java runtime for Spark (.ci/run installs openjdk-17-jre-headless)", allow_module_level=True)

from conftest import FIXTURES  # noqa: E402
from servetrace.bundle import fit_sql  # noqa: E402
from servetrace.bundle.agents import fit_agent_model  # noqa: E402
from servetrace.bundle.fit import fit_bundle  # noqa: E402
from servetrace.ingest import ingest_trace  # noqa: E402
from servetrace.settings import Settings  # noqa: E402
from servetrace.stages.engine import Engine  # noqa: E402
from test_agent_mix import simulate  # noqa: E402
from test_agent_sql import ingested, planted  # noqa: E402
from test_spark_fit import assert_close  # noqa: E402

SPARK = Engine("spark", "local[2]")
AG = FIXTURES / "agentic"


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    w = tmp_path_factory.mktemp("spark_agents")
    for name, src in {"cctraces": AG / "cctraces", "copilot": AG / "copilot.jsonl.gz",
                      "tracelab": AG / "tracelab.jsonl"}.items():
        ingest_trace(src, w / name)
    ingested(planted(np.random.default_rng(4)), w, "planted")
    ingested(simulate(np.random.default_rng(11)), w, "mix")
    return w


def _clients(path, group_by: str | None):
    """The bundle clients as the fit names them (client_names' answer with the grouping columns)."""
    if group_by is None:
        return None
    names = sorted(pl.read_parquet(path, columns=[group_by])[group_by].fill_null("(none)").unique().to_list())
    return {n: i for i, n in enumerate(names)}, -1, [group_by]


@pytest.mark.parametrize("name,group_by,window_s", [("cctraces", None, 600), ("copilot", None, 600), ("tracelab", None, 600),
                                                    ("planted", "model", 600), ("planted", "model", 30), ("mix", "model", 600)])
def test_agent_model_equal_on_spark(traces, name, group_by, window_s):
    """Window 30 s: the planted sessions start in many windows (about four each)."""
    path = traces / name / "requests.parquet"
    clients = _clients(path, group_by)
    want = fit_agent_model(path, window_s, clients=clients)  # DuckDB, its own database
    with SPARK.connect(path) as con:
        got = fit_agent_model(path, window_s, clients=clients, con=con)
        assert con.spark.conf.get("spark.sql.cteRecursionRowLimit") == "-1"  # the SQL bounds its own depth
    assert want and ("clients" in want["agents"]) == (group_by is not None)
    assert_close(want, got)


def test_fit_on_spark_gives_the_streamed_fits_agent_model(traces):
    """The whole `fit --engine spark` on the planted trace: its agent model (with nested subagents and
    per-model clients) is the streamed DuckDB fit's."""
    settings = Settings(group_by="model")
    want = fit_bundle(traces / "planted", settings)["agents"]
    got = fit_sql.fit_file(traces / "planted" / "requests.parquet", settings, SPARK)["agents"]
    assert want["subagents"]["depth_max"] == 2 and len(want["clients"]) == 5
    assert_close(want, got)


def test_calls_table_built_once_per_connection(traces):
    """characterize on Spark: the agents stage builds stg_agent_calls, then the bundle's agent model on
    the same connection reads it (one cached copy, not two) and is the model of a fresh connection."""
    from servetrace.stages import sql

    path = traces / "cctraces" / "requests.parquet"
    want = fit_agent_model(path, 600)
    with SPARK.connect(path) as con:
        built, run_sql = [], con.run_sql
        con.run_sql = lambda name, kind: (built.append(name), run_sql(name, kind))[1]
        sql.run_once(con, "stg_agent_calls")  # the agents stage's
        got = fit_agent_model(path, 600, con=con)
        assert built.count("stg_agent_calls") == 1 and len(con._cached) == 1
    assert_close(want, got)
