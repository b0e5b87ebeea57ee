"""Agent workloads exported for a session-aware consumer: the Mooncake timed JSONL with
`--sessions` names each row's conversation (its session, or a subagent's calls their subagent), and
AIPerf 0.13.0's own mooncake_trace loader (run from .venv-consumers) reads it into that many
multi-turn conversations, every row with its timestamp, input length and output."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import polars as pl

from servetrace import io
from servetrace.exports import export
from servetrace.generation import GenerateOptions, generate_table
from test_agent_generate import fitted  # noqa: F401 - the fitted agent bundle
from test_export_consumers import ROOT, consumer_env


def test_agent_sessions_replay_as_one_conversation_per_agent(fitted, tmp_path):  # noqa: F811
    _, bundle, _ = fitted
    table, _ = generate_table(bundle, GenerateOptions(seed=6, block_size=64))
    io.write_parquet(tmp_path / "agents.parquet", table, {})
    export(tmp_path / "agents.parquet", "mooncake", tmp_path / "t.jsonl", block_size=64, sessions=True)
    rows = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    df = pl.from_arrow(table)
    chain = df.select(pl.when(pl.col("call_kind") == "subagent").then(pl.col("parent_id"))
                      .otherwise(pl.col("session_id"))).to_series()
    assert [r["session_id"] for r in rows] == chain.to_list()
    assert chain.n_unique() == df["session_id"].n_unique() + df["parent_id"].n_unique() - 1  # sessions + subagents
    side = json.loads((tmp_path / "t.jsonl.meta.json").read_text())
    assert "a conversation of their own" in side["session_id"]
    python = consumer_env()
    jobs = [{"kind": "aiperf-load", "type": "mooncake_trace", "path": str(tmp_path / "t.jsonl")}]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    proc = subprocess.run([str(python), str(ROOT / "tests" / "consumers" / "check.py"), str(tmp_path / "jobs.json"),
                           str(tmp_path / "results.json")], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "results.json").read_text())[0]
    assert got["ok"], got.get("error")
    assert got["sessions"] == chain.n_unique() and len(got["rows"]) == len(rows)
    aiperf = np.array(sorted(tuple(r) for r in got["rows"]), dtype=float)
    ours = np.array(sorted((r["timestamp"], r["input_length"], r["output_length"]) for r in rows), dtype=float)
    assert np.array_equal(aiperf, ours)
