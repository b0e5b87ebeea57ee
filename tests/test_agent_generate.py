"""The agent model (bundle `agents`) and agent generation: an agent workload simulated with known
parameters is fitted and its parameters recovered within their sampling error; the generated
workload has the structure the model says (turns, calls, subagents, gaps, context, cache) and
the same seed gives the same bytes."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from servetrace import io
from servetrace.bundle.fit import fit_bundle
from servetrace.bundle.model import dumps_bundle
from servetrace.generation import GenerateOptions, generate_table
from servetrace.ingest import ingest_trace

TRUTH = {"turns": [1, 2, 3, 4], "calls_per_turn": 5.0, "latency": 1.5, "tool_gap": 2.0, "think_gap": 30.0,
         "spawn": 0.3, "fanout": 2.0, "sub_calls": 4.0, "sub_gap": 0.5, "sub_start": 1.0, "session_gap": 10.0}


def simulate(rng: np.random.Generator, sessions: int) -> pl.DataFrame:
    """Sessions arriving as a Poisson process (mean gap 10 s) with 1-4 user turns (uniform), 1 +
    Poisson(4) main calls per turn, call durations Exp(1.5 s), tool gaps Exp(2 s) and think gaps
    Exp(30 s) from the previous call's end; each call resends its chain's previous input (cached)
    plus 100-300 tokens (500-1500 at a new turn). A turn spawns subagents with probability 0.3,
    1 + Binomial(2, 1/2) of them from one of its calls chosen uniformly, each starting Exp(1 s)
    after that call's arrival with 1 + Poisson(3) calls Exp(0.5 s) apart (from each end), 800
    tokens of first input and 50-150 more per call."""
    rows = []
    start = np.cumsum(rng.exponential(TRUTH["session_gap"], sessions))
    for s in range(sessions):  # a simulation of the truth, independent of the generator
        t, context, step = start[s], int(rng.integers(2000, 3001)), 0
        for turn in range(1, int(rng.integers(1, 5)) + 1):
            n = 1 + rng.poisson(4)
            spawn_at = int(rng.integers(0, n)) if rng.random() < TRUTH["spawn"] else -1
            for k in range(n):
                if step:
                    t += rng.exponential(TRUTH["think_gap"] if k == 0 else TRUTH["tool_gap"])
                    context += int(rng.integers(500, 1501) if k == 0 else rng.integers(100, 301))
                lat = rng.exponential(TRUTH["latency"])
                rid = f"s{s}/{step + 1}"
                rows.append({"arrival_s": t, "session_id": f"s{s}", "input_tokens": context,
                             "output_tokens": 200 if k == 0 else 50, "latency_s": lat, "turn": turn,
                             "cached_tokens": 0 if step == 0 else prev, "call_kind": "main",
                             "request_id": rid, "parent_id": None})
                prev = context
                if k == spawn_at:
                    for j in range(1 + rng.binomial(2, 0.5)):
                        u, sub_ctx = t + rng.exponential(TRUTH["sub_start"]), 800
                        for i in range(1 + rng.poisson(3)):
                            if i:
                                u += rng.exponential(TRUTH["sub_gap"])
                                sub_ctx += int(rng.integers(50, 151))
                            sub_lat = rng.exponential(TRUTH["latency"])
                            rows.append({"arrival_s": u, "session_id": f"s{s}", "input_tokens": sub_ctx,
                                         "output_tokens": 30, "latency_s": sub_lat, "turn": turn,
                                         "cached_tokens": 0 if i == 0 else sub_ctx - 100,
                                         "call_kind": "subagent", "request_id": f"{rid}#{j + 1}/{i + 1}",
                                         "parent_id": f"{rid}#{j + 1}"})
                            u += sub_lat
                t += lat
                step += 1
    return pl.DataFrame(rows).sort("arrival_s")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("agents")
    trace = simulate(np.random.default_rng(5), 600)
    trace.write_csv(tmp / "agents.csv")
    ingest_trace(tmp / "agents.csv", tmp / "out")
    return trace, fit_bundle(tmp / "out"), tmp


def _mean(pmf: dict) -> float:
    return float(np.dot(pmf["values"], pmf["probs"]))


def _median(q: dict) -> float:
    return float(np.interp(0.5, q["probs"], q["quantiles"]))


def test_known_parameters_are_recovered(fitted):
    trace, bundle, _ = fitted
    m = bundle["agents"]
    main = trace.filter(pl.col("call_kind") == "main")
    turns = main.group_by("session_id", "turn").len()
    n_turns, sessions = turns.height, 600
    # PMFs: each probability within 4 standard errors of the truth
    assert m["turns"]["values"] == [1, 2, 3, 4]
    assert np.all(np.abs(np.asarray(m["turns"]["probs"]) - 0.25) < 4 * np.sqrt(0.25 * 0.75 / sessions))
    assert abs(_mean(m["calls_per_turn"]) - TRUTH["calls_per_turn"]) < 4 * 2 / np.sqrt(n_turns)
    # exponential gaps: median = mean x ln 2, standard error of a median of Exp(mu): mu / sqrt(n)
    for key, mu in (("tool_gap_s", TRUTH["tool_gap"]), ("think_gap_s", TRUTH["think_gap"]),
                    ("subagent_gap_s", TRUTH["sub_gap"]), ("latency_s", TRUTH["latency"])):
        q = m[key]
        assert abs(_median(q) - mu * np.log(2)) < 4 * mu / np.sqrt(q["n"]), key
    assert m["gap_measure"] == "from previous end"
    sub = m["subagents"]
    assert abs(sub["spawn_share"] - TRUTH["spawn"]) < 4 * np.sqrt(0.3 * 0.7 / n_turns)
    spawning = sub["calls"]  # calls per subagent: 1 + Poisson(3)
    assert abs(_mean(spawning) - TRUTH["sub_calls"]) < 4 * np.sqrt(3 / sub["start_s"]["n"])
    assert abs(_mean(sub["fanout"]) - TRUTH["fanout"]) < 4 * np.sqrt(0.5 / (TRUTH["spawn"] * n_turns))
    assert sub["depth_max"] == 1 and sub["nested_share"] == []
    # growth inside a turn U(100, 300), at a new turn U(500, 1500): exact quantiles of the simulated values
    assert _median(m["input_tokens"]["main_tool"]) == pytest.approx(200, abs=10)
    assert _median(m["input_tokens"]["main_turn"]) == pytest.approx(1000, abs=50)
    assert m["output_tokens"]["main_opens"]["quantiles"][50] == 200 and m["output_tokens"]["subagent_in_turn"]["quantiles"][50] == 30
    assert m["sessions_per_call"] == pytest.approx(sessions / trace.height)
    assert abs(m["session_iat_cv"] - 1.0) < 0.1  # Poisson starts (about 60 per 600 s window)
    # against an independent computation: a subagent's first call after the session's latest main call
    firsts = trace.filter((pl.col("call_kind") == "subagent") & pl.col("request_id").str.ends_with("/1"))
    offs = firsts.sort("arrival_s").join_asof(main.sort("arrival_s").select("session_id", pl.col("arrival_s").alias("main_s"), pl.col("arrival_s").alias("k")),
                            left_on="arrival_s", right_on="k", by="session_id", strategy="backward")
    assert _median(sub["start_s"]) == pytest.approx(float((offs["arrival_s"] - offs["main_s"]).median()), rel=1e-9)


def _structure(df: pl.DataFrame) -> dict:
    main = df.filter(pl.col("call_kind") == "main")
    sub = df.filter(pl.col("call_kind") == "subagent")
    per_turn = main.group_by("session_id", "turn").len()["len"]
    spawning = sub.group_by("session_id", "turn").agg(pl.col("parent_id").n_unique())
    return {"calls_per_turn": per_turn.mean(), "turns": main.group_by("session_id").agg(pl.col("turn").n_unique())["turn"].mean(),
            "spawn": spawning.height / per_turn.len(), "fanout": spawning["parent_id"].mean(),
            "sub_calls": sub.group_by("parent_id").len()["len"].mean(), "sub_share": sub.height / df.height,
            "cached_share": df["cached_tokens"].sum() / df["input_tokens"].sum()}


def test_generated_agent_sessions_have_the_model_structure(fitted):
    trace, bundle, tmp = fitted
    syn, summary = generate_table(bundle, GenerateOptions(seed=3))
    df = pl.from_arrow(syn)
    assert summary["requests"] == df.height and summary["sessions"] == df["session_id"].n_unique()
    assert df["arrival_s"].is_sorted() and df["request_id"].n_unique() == df.height
    assert set(df["call_kind"]) == {"main", "subagent"}
    # every subagent call names its spawning call, which exists, in the same session and turn
    sub = df.filter(pl.col("call_kind") == "subagent")
    spawner = sub.with_columns(pl.col("parent_id").str.replace(r"#[0-9]+$", "").alias("spawner"))
    joined = spawner.join(df.select(pl.col("request_id").alias("spawner"), pl.col("session_id").alias("s2"),
                                    pl.col("turn").alias("t2")), on="spawner", how="left")
    assert joined["s2"].null_count() == 0 and (joined["s2"] == joined["session_id"]).all()
    assert (joined["t2"] == joined["turn"]).all()
    src, gen = _structure(trace), _structure(df)
    n = df.height
    for key, tol in (("calls_per_turn", 0.08), ("turns", 0.06), ("spawn", 0.2), ("fanout", 0.1),
                     ("sub_calls", 0.1), ("sub_share", 0.2), ("cached_share", 0.05)):
        assert gen[key] == pytest.approx(src[key], rel=tol), (key, src[key], gen[key], n)


def test_same_seed_same_bytes(fitted, tmp_path):
    _, bundle, _ = fitted
    dumps_bundle(bundle)  # valid against the schema and the checks
    paths = []
    for name, seed in (("a", 4), ("b", 4), ("c", 5)):
        table, _ = generate_table(bundle, GenerateOptions(seed=seed, block_size=64))
        paths.append(tmp_path / f"{name}.parquet")
        io.write_parquet(paths[-1], table, {})
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b and a != c
    # prefix reuse follows the chains: a call's full blocks reappear in its chain's next call
    df = pl.read_parquet(paths[0]).sort("session_id", "arrival_s")
    main = df.filter(pl.col("call_kind") == "main")
    nxt = main.with_columns(pl.col("hash_ids").shift(-1).over("session_id").alias("next"),
                            pl.col("input_tokens").shift(-1).over("session_id").alias("next_in")).drop_nulls("next")
    grown = nxt.filter(pl.col("next_in") >= pl.col("input_tokens")).head(200)
    for row in grown.iter_rows(named=True):
        full = row["input_tokens"] // 64
        assert row["next"][:full] == row["hash_ids"][:full]
    assert pq.read_schema(paths[0]).names[-1] == "hash_ids"


def test_nested_subagents_reach_the_model_depth(fitted, tmp_path):
    """Subagents spawning subagents: a model of depth 2 where half the first level's subagents spawn
    generates a trace whose fit gives depth 2 and that share back (4 standard errors)."""
    from servetrace.bundle.agents import fit_agent_model

    _, bundle, _ = fitted
    sub = {**bundle["agents"]["subagents"], "depth_max": 2, "nested_share": [0.5]}
    nested = {**bundle, "agents": {**bundle["agents"], "subagents": sub}}
    table, _ = generate_table(nested, GenerateOptions(seed=2))
    io.write_parquet(tmp_path / "nested.parquet", table, {})
    got = fit_agent_model(tmp_path / "nested.parquet")["agents"]["subagents"]
    first_level = pl.from_arrow(table).filter(pl.col("call_kind") == "subagent")["parent_id"].str.count_matches("#").eq(1)
    n = pl.from_arrow(table).filter(pl.col("call_kind") == "subagent").filter(first_level)["parent_id"].n_unique()
    assert got["depth_max"] == 2
    from servetrace.stages import sql  # the agents area reads the same depth

    with sql.connect(tmp_path / "nested.parquet") as con:
        sql.run_sql(con, "stg_agent_calls")
        assert sql.table(con, "agent_stats")["depth_max"][0] == 2
    assert abs(got["nested_share"][0] - 0.5) < 4 * np.sqrt(0.25 / n)
