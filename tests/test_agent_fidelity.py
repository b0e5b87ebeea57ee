"""Agent workloads end to end: a cc-traces directory written from the format's documented schema
(kv-cache-tester docs/trace_replay_tester.md, as tests/fixtures/agentic/make_fixtures.py) with
known structure is characterized, generated from its bundle and validated: the agent checks are
reported with both noise floors, and the generated workload matches the source within them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import scratch_spy
from servetrace.characterization import characterize
from servetrace.generation import GenerateOptions
from servetrace.generation.run import generate_file
from servetrace.validation import agents
from servetrace.validation.run import validate_traces

BLOCK = 64


def _req(t, kind, n_in, n_out, ids, stop, api, model="claude"):
    return {"t": round(t, 3), "type": kind, "model": model, "in": int(n_in), "out": int(n_out), "hash_ids": ids,
            "input_types": ["text"], "output_types": ["text"], "stop": stop, "api_time": round(api, 3)}


def write_cctraces(out, rng: np.random.Generator, traces: int) -> None:
    """`traces` conversations, each 1-4 user turns of 1 + Poisson(3) main calls (the last of a
    turn stops with end_turn), api_time Exp(2 s), tool gaps Exp(3 s), think gaps Exp(40 s) after
    the previous call's end; contexts grow 200-600 tokens inside a turn, 1000-3000 at a new one,
    with block ids extending the previous call's. A turn spawns 1-2 subagents with probability
    0.4 after one of its calls but the last: 1 + Poisson(2) haiku calls each, Exp(0.5 s) apart after each end."""
    out.mkdir()
    for n in range(traces):  # writing the source files, one conversation at a time
        t, ctx, ids, reqs = 0.0, int(rng.integers(8000, 16000)), [], []
        for turn in range(int(rng.integers(1, 5))):
            calls = 1 + rng.poisson(3)
            # a subagent is spawned by a tool call (stop tool_use): not the turn's last call
            spawn = int(rng.integers(0, calls - 1)) if calls > 1 and rng.random() < 0.4 else -1
            for k in range(calls):
                if reqs:
                    t += rng.exponential(40.0 if k == 0 else 3.0)
                    ctx += int(rng.integers(1000, 3001) if k == 0 else rng.integers(200, 601))
                ids = ids + list(range(len(ids) + 1, -(-ctx // BLOCK) + 1))
                api = rng.exponential(2.0)
                reqs.append(_req(t, "s" if k == 0 else "n", ctx, 300 if k == 0 else 80, ids,
                                 "end_turn" if k == calls - 1 else "tool_use", api))
                if k == spawn:
                    for j in range(int(rng.integers(1, 3))):
                        u, sctx, sub = t + 0.2, 3000, []
                        for i in range(1 + rng.poisson(2)):
                            sid = [10_000 * (j + 1) + b for b in range(-(-sctx // BLOCK))]
                            sapi = rng.exponential(0.8)
                            sub.append(_req(u, "n", sctx, 40, sid, "tool_use", sapi, "haiku"))
                            u += sapi + rng.exponential(0.5)
                            sctx += 300
                        reqs.append({"t": round(t + 0.2, 3), "type": "subagent", "agent_id": f"agent_{turn}_{j}",
                                     "subagent_type": "Explore", "models": ["haiku"], "requests": sub})
                t += api
        trace = {"id": f"tr{n:04d}", "models": ["claude", "haiku"], "block_size": BLOCK, "hash_id_scope": "local",
                 "requests": reqs}
        (out / f"tr{n:04d}.json").write_text(json.dumps(trace))


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ccfid")
    write_cctraces(tmp / "cc", np.random.default_rng(3), 400)
    characterize(tmp / "cc", tmp / "out", quiet=True)
    generate_file(tmp / "out", tmp / "syn.parquet", GenerateOptions(seed=1))
    with pytest.MonkeyPatch.context() as monkeypatch:
        halves = scratch_spy(monkeypatch, agents, "_halves", 1)
        result = validate_traces(tmp / "out", tmp / "syn.parquet", tmp / "val", page=False)
    return tmp, result, halves


def test_the_halves_are_written_in_validates_own_directory(validated):
    tmp, _, halves = validated
    # where validate writes (not beside the source), live (Ctrl-C removes them), named as a sweep removes them after a kill
    assert [(work.parent, live, swept) for work, live, swept in halves] == [(tmp / "val", True, True)]
    assert not [p.name for p in [*(tmp / "val").iterdir(), *(tmp / "out").iterdir()] if p.name.startswith(".validate")]


def test_the_agent_model_is_fitted_from_the_trace(validated):
    tmp, *_ = validated
    m = json.loads((tmp / "out" / "bundle.json").read_text())["agents"]
    assert m["gap_measure"] == "from previous end"
    assert m["subagents"]["fanout"]["values"] == [1, 2] and m["subagents"]["depth_max"] == 1
    mean_calls = np.dot(m["calls_per_turn"]["values"], m["calls_per_turn"]["probs"])
    assert abs(mean_calls - 4.0) < 4 * np.sqrt(3 / m["tool_gap_s"]["n"] * 3)  # 1 + Poisson(3)
    assert abs(np.dot(m["subagents"]["calls"]["values"], m["subagents"]["calls"]["probs"]) - 3.0) < 0.3


def test_agent_checks_carry_both_noise_floors(validated):
    _, result, _ = validated
    agent = {k: c for k, c in result["checks"].items() if k.startswith("agent_")}
    assert {"agent_ks_calls_per_turn", "agent_ks_tool_gap", "agent_ks_think_gap", "agent_ks_subagent_gap",
            "agent_ks_context_growth", "agent_subagent_share", "agent_spawn_share", "agent_fanout_mean"} <= set(agent)
    assert agent["agent_cached_share"]["value"] is None  # cc-traces record no cached tokens
    for name, c in agent.items():
        if c["value"] is None:
            continue
        floor = c["noise_floor"]
        assert floor["half_to_half"] is not None and floor["seed_to_seed"] is not None, name
        assert c["within_noise"] == (c["value"] <= max(floor.values())), name


def test_generated_agent_workload_is_within_noise(validated):
    _, result, _ = validated
    agent = {k: c for k, c in result["checks"].items() if k.startswith("agent_") and c["value"] is not None}
    # each agent number lies within its threshold or within the source's own half-to-half spread or
    # the generator's seed-to-seed spread (measured: calls per turn KS 0.034, floors 0.014 / 0.040;
    # tool gaps 0.013, floors 0.016 / 0.023; think gaps 0.040, floors 0.041 / 0.050)
    beyond = {k: (c["value"], c["noise_floor"]) for k, c in agent.items() if not (c["pass"] or c["within_noise"])}
    assert not beyond, beyond

