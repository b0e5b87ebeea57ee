"""The agents area: numbers stated by hand on the fixtures, and parameters of a simulated agent
workload recovered within their sampling error."""

from __future__ import annotations

import gzip
import json

import numpy as np
import polars as pl
import pytest

from conftest import FIXTURES
from servetrace.characterization import characterize

AG = FIXTURES / "agentic"


@pytest.fixture(scope="module")
def cc(tmp_path_factory):
    out = tmp_path_factory.mktemp("cc")
    characterize(AG / "cctraces", out, quiet=True)
    return out, json.loads((out / "findings.json").read_text())


def test_cc_traces_by_hand(cc):
    out, f = cc
    a = f["agents"]
    assert (a["calls"], a["sessions"], a["turns"]) == (8, 2, 3)
    # turn 1 of ta: ta/1, ta/2, three subagent calls, ta/5; turn 2 of ta: ta/6; tb: one call
    assert a["calls_per_turn"]["mean"] == pytest.approx(8 / 3)
    assert a["calls_per_turn"]["max"] == 6 and a["calls_per_session"]["max"] == 7
    # main chain of ta ends at t + api_time: 2, 4, 12; next calls at 3, 8 (tool) and 60 (think);
    # agent_001 ends at 5.0, its next call at 5.5
    assert a["tool_gap_s"]["count"] == 3 and a["tool_gap_s"]["mean"] == pytest.approx((1 + 4 + 0.5) / 3)
    assert a["tool_gap_s"]["p50"] == pytest.approx(1.0)
    assert a["think_gap_s"] == {"count": 1, "p50": 48.0, "p90": 48.0, "mean": 48.0, "measured": "from previous end"}
    sub = a["subagents"]
    assert (sub["calls"], sub["subagents"], sub["spawning_turns"], sub["fanout_max"], sub["depth_max"]) == (3, 2, 1, 2, 1)
    assert sub["share_of_calls"] == pytest.approx(3 / 8)
    # growth per step: ta main +1000, +2000, +1000; agent_001 +500
    assert a["context_growth_tokens"] == {"p50": 1000.0, "mean": 1125.0}
    assert "absent" in a["cached_share"] and "absent" in a["canceled_share"]
    assert "same instant" in a["arrivals"]["sessions"]["absent"]
    assert a["output_tokens"]["subagent / opens turn"]["mean"] == 15.0  # 20 and 10
    fanout = pl.read_parquet(out / "tables" / "agent_fanout.parquet")
    assert fanout.to_dicts() == [{"subagents": 2, "turns": 1, "share": 1.0}]


def test_cc_traces_report_has_the_agent_section(cc):
    out, _ = cc
    html = (out / "report.html").read_text()
    assert 'id="agents"' in html or "Agent workload" in html
    for key in ("agent-calls", "agent-gaps", "agent-context", "agent-outputs"):
        assert key in html


def test_copilot_cached_share_and_cancels(tmp_path):
    characterize(AG / "copilot.jsonl.gz", tmp_path, quiet=True)
    a = json.loads((tmp_path / "findings.json").read_text())["agents"]
    assert a["cached_share"] == pytest.approx((0 + 1000 + 0 + 1200) / (1000 + 1200 + 800 + 1500))
    assert a["canceled_share"] == 0.25
    assert a["tool_gap_s"]["mean"] == 3.0  # m2 at 10:00:05, m1 ended 10:00:02
    # m1's tool batch ran 3 s (10:00:02 to 10:00:05): all of the tool gap before m2
    assert a["tool_time_s"] == {"count": 1, "p50": 3.0, "mean": 3.0, "share_of_tool_gap": 1.0}
    assert a["think_gap_s"]["mean"] == 54.0  # m3 at 10:01:00, m2 ended 10:00:06
    assert a["arrivals"]["sessions"] == {"count": 2, "iat_mean_s": 30.0, "iat_cv": 0.0}


def copilot_tool_counts() -> tuple[list[int], int, list[bool]]:
    """Counted straight from the fixture's JSON: per kept call (numeric prompt), the function_calls of
    its turn's tool_batches whose request_id is its message_id; the failed ones (status 2); and the
    auto_continue of the calls that had a batch."""
    calls, failed, auto = [], 0, []
    for line in gzip.open(AG / "copilot.jsonl.gz", "rt"):
        try:
            session = json.loads(line)
        except ValueError:
            continue
        if not isinstance(session.get("turns"), list):
            continue
        for turn in session["turns"]:
            for call in turn["llm_calls"]:
                if not isinstance(call["tokens"]["prompt"], int):
                    continue
                mine = [b for b in turn["tool_batches"] if b["request_id"] == call["message_id"]]
                fcalls = [f for b in mine for f in b["function_calls"]]
                calls.append(len(fcalls))
                failed += sum(f["status"] == 2 for f in fcalls)
                if mine:
                    auto.append(all(b["auto_continue"] for b in mine))
    return calls, failed, auto


def test_copilot_tool_calls_failures_and_auto_continue(tmp_path):
    characterize(AG / "copilot.jsonl.gz", tmp_path, quiet=True)
    t = json.loads((tmp_path / "findings.json").read_text())["agents"]["tool_calls"]
    calls, failed, auto = copilot_tool_counts()
    assert (calls, failed, auto) == ([3, 0, 0, 1], 2, [True, False])  # m1..m4 as written
    assert t["calls"] == len(calls)
    assert t["per_call"]["mean"] == pytest.approx(np.mean(calls))
    assert t["per_call"]["p50"] == pytest.approx(np.quantile(calls, 0.5))
    assert t["per_call"]["p90"] == pytest.approx(np.quantile(calls, 0.9))
    assert t["per_call"]["max"] == max(calls)
    assert t["failure_share"] == pytest.approx(failed / sum(calls))
    assert t["auto_continue_share"] == pytest.approx(sum(auto) / len(auto))


def test_no_tool_calls_recorded_is_absent(cc):
    a = json.loads((cc[0] / "findings.json").read_text())["agents"]
    assert a["tool_calls"] == {"absent": "the source records no tool calls"}


def test_older_formats_have_no_agent_area(tmp_path):
    characterize(FIXTURES / "ingest" / "burstgpt_v1.csv", tmp_path, quiet=True)
    assert "agents" not in json.loads((tmp_path / "findings.json").read_text())
    assert not list((tmp_path / "tables").glob("agent_*"))


def simulated_agent_trace(rng: np.random.Generator, sessions: int) -> tuple[pl.DataFrame, dict]:
    """Sessions arriving as a Poisson process (mean gap 10 s), 3 turns each, 1 + Poisson(4) calls per
    turn lasting 1 s, exponential tool gaps (mean 2 s) and think gaps (mean 30 s); each call resends
    the previous input (cached) plus 100-300 new tokens."""
    rows = []
    start = np.cumsum(rng.exponential(10.0, sessions))
    for s in range(sessions):
        t, context = start[s], 1000
        for turn in (1, 2, 3):
            if turn > 1:
                t += rng.exponential(30.0)
            for k in range(1 + rng.poisson(4)):
                if k:
                    t += rng.exponential(2.0)
                cached = context if rows and rows[-1]["session_id"] == f"s{s}" else 0
                context += int(rng.integers(100, 301))
                rows.append({"arrival_s": t, "session_id": f"s{s}", "input_tokens": context, "output_tokens": 50,
                             "latency_s": 1.0, "turn": turn, "cached_tokens": cached, "call_kind": "main"})
                t += 1.0
    return pl.DataFrame(rows), {"calls_per_turn": 5.0, "tool_gap": 2.0, "think_gap": 30.0, "session_iat_cv": 1.0}


def test_simulated_agent_workload_is_recovered(tmp_path):
    trace, truth = simulated_agent_trace(np.random.default_rng(7), 400)
    trace.sort("arrival_s").write_csv(tmp_path / "agents.csv")
    characterize(tmp_path / "agents.csv", tmp_path / "out", quiet=True)
    a = json.loads((tmp_path / "out" / "findings.json").read_text())["agents"]
    assert a["calls"] == trace.height and a["sessions"] == 400 and a["turns"] == 1200
    # means within 4 standard errors of the simulated parameters
    per_turn = trace.group_by("session_id", "turn").len()["len"]
    assert abs(a["calls_per_turn"]["mean"] - truth["calls_per_turn"]) < 4 * 2.0 / np.sqrt(1200)
    n_tool = trace.height - 1200
    assert a["tool_gap_s"]["count"] == n_tool and a["think_gap_s"]["count"] == 800
    assert abs(a["tool_gap_s"]["mean"] - truth["tool_gap"]) < 4 * truth["tool_gap"] / np.sqrt(n_tool)
    assert abs(a["think_gap_s"]["mean"] - truth["think_gap"]) < 4 * truth["think_gap"] / np.sqrt(800)
    assert abs(a["arrivals"]["sessions"]["iat_cv"] - truth["session_iat_cv"]) < 4 / np.sqrt(2 * 399)
    # exact against an independent computation
    assert a["calls_per_turn"]["mean"] == pytest.approx(per_turn.mean())
    assert a["cached_share"] == pytest.approx(trace["cached_tokens"].sum() / trace["input_tokens"].sum())
    growth = trace.sort("arrival_s").with_columns(pl.col("input_tokens").diff().over("session_id").alias("g"))["g"]
    assert a["context_growth_tokens"]["mean"] == pytest.approx(growth.mean())
    assert a["arrivals"]["calls"]["iat_cv"] > a["arrivals"]["sessions"]["iat_cv"]  # calls cluster in sessions


def test_session_model_fitted_from_an_agent_trace_generates_sessions_of_calls(tmp_path):
    """The bundle's session model (pipeline/bundle/sessions.py) applies to agent traces as they are
    ingested: a session is its calls, a gap the idle time from the previous call's end."""
    from servetrace import io
    from servetrace.bundle.fit import fit_bundle
    from servetrace.generation import GenerateOptions, generate_table

    trace, _ = simulated_agent_trace(np.random.default_rng(11), 300)
    trace.sort("arrival_s").write_csv(tmp_path / "agents.csv")
    characterize(tmp_path / "agents.csv", tmp_path / "out", quiet=True)
    b = fit_bundle(tmp_path / "out")
    s = b["sessions"]
    per_session = trace.group_by("session_id").len()["len"]
    assert s["source"] == "session ids"
    assert s["turns"]["observed_mean"] == pytest.approx(per_session.mean(), rel=1e-9)  # calls per session
    # the PMF counts sessions the span end may have cut as open (bundle/turns.py): a little above
    assert 1 / s["turns"]["fit"]["params"]["p"] == pytest.approx(per_session.mean(), rel=0.01)
    src = trace.sort("session_id", "arrival_s").with_columns(
        (pl.col("arrival_s") - (pl.col("arrival_s") + pl.col("latency_s")).shift(1).over("session_id")).alias("idle"))
    idle = src["idle"].drop_nulls().to_numpy()
    assert np.interp(0.5, s["think_s"]["probs"], s["think_s"]["quantiles"]) == pytest.approx(np.median(idle), rel=0.02)
    syn, _ = generate_table(b, GenerateOptions(seed=1))
    io.write_parquet(tmp_path / "syn.parquet", syn, {})
    gen = pl.read_parquet(tmp_path / "syn.parquet")
    calls = gen.group_by("session_id").len()["len"]
    assert calls.mean() == pytest.approx(per_session.mean(), rel=0.15)
    # a follow-up call resends the previous context: inputs grow along a session
    growth = gen.sort("session_id", "arrival_s").with_columns(
        pl.col("input_tokens").diff().over("session_id").alias("g"))["g"].drop_nulls()
    assert (growth > 0).mean() > 0.9
