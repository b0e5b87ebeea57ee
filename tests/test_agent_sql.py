"""The agent model's aggregates (sql/agents/, bundle/agents.py) against an independent Polars
computation on a planted trace: sessions of two models with a third making some main calls, user
turns of several calls, subagents (some spawning subagents of their own, two levels deep),
recorded latencies, cached tokens and cancellations. Every count, PMF and quantile function the
SQL gives is recomputed here from the rows: chains, steps and gaps by Polars windows, quantiles by
numpy's linear interpolation (DuckDB's quantile_cont)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from servetrace.bundle.agents import fit_agent_model
from servetrace.ingest import ingest_trace
from servetrace.settings import AgentModelSettings

PROBS = np.linspace(0, 1, 101).round(10)


def planted(rng: np.random.Generator, sessions: int = 60) -> pl.DataFrame:
    """Session i (model A for even i, B for odd) starts at 7 s * i + U(0, 5 s), has 1 + i % 3 user
    turns of 1 + Poisson(2) main calls; a main call after the first is `tool-model`'s with
    probability 0.25. Each turn's first call spawns 1 + (i % 2) subagents of 1 + Poisson(2) calls
    when i % 4 != 3, and the first subagent of a session's first turn spawns one of its own (level 2)
    when i % 5 == 0. Calls last Exp(1 s); gaps Exp(2 s) in a turn, Exp(15 s) between turns;
    one call in ten is canceled (recorded for all), cached tokens are the chain's previous input."""
    rows = []
    for i in range(sessions):  # the planted truth, made independently of the package
        sid, model = f"s{i}", "A" if i % 2 == 0 else "B"
        t, ctx, step = 7.0 * i + rng.uniform(0, 5), 1000 + 10 * i, 0
        for turn in range(1, 2 + i % 3):
            for k in range(1 + rng.poisson(2)):
                if step:
                    t += rng.exponential(15.0 if k == 0 else 2.0)
                    ctx += 300 if k == 0 else 80
                lat, rid = rng.exponential(1.0), f"{sid}/{step + 1}"
                rows.append({"arrival_s": t, "session_id": sid, "turn": turn, "call_kind": "main",
                             "model": model if step == 0 or rng.random() >= 0.25 else "tool-model",
                             "request_id": rid, "parent_id": None, "input_tokens": ctx,
                             "output_tokens": 40 + step, "cached_tokens": 0 if step == 0 else ctx - 80,
                             "latency_s": lat, "canceled": bool(rng.random() < 0.1)})
                if k == 0 and i % 4 != 3:
                    for j in range(1 + i % 2):
                        nested = turn == 1 and j == 0 and i % 5 == 0
                        rows += _subagent(rng, sid, turn, f"{rid}#{j + 1}", t, model, nested)
                t += lat
                step += 1
    return pl.DataFrame(rows, infer_schema_length=None).sort("arrival_s")


def _subagent(rng, sid: str, turn: int, chain: str, t: float, model: str, nested: bool) -> list[dict]:
    rows, u, ctx = [], t + rng.exponential(1.0), 500
    for s in range(1 + rng.poisson(2)):
        if s:
            u += rng.exponential(0.5)
            ctx += 50
        lat, rid = rng.exponential(1.0), f"{chain}/{s + 1}"
        rows.append({"arrival_s": u, "session_id": sid, "turn": turn, "call_kind": "subagent", "model": f"sub-{model}",
                     "request_id": rid, "parent_id": chain, "input_tokens": ctx, "output_tokens": 20 + s,
                     "cached_tokens": 0 if s == 0 else ctx - 50, "latency_s": lat, "canceled": False})
        if nested and s == 0:
            rows += _subagent(rng, sid, turn, f"{rid}#1", u, model, False)
        u += lat
    return rows


def ingested(trace: pl.DataFrame, tmp: Path, name: str = "out") -> Path:
    """The trace as JSON lines, ingested into tmp/NAME; its request table."""
    with open(tmp / f"{name}.jsonl", "w") as f:
        for row in trace.iter_rows(named=True):
            f.write(json.dumps(row) + "\n")
    ingest_trace(tmp / f"{name}.jsonl", tmp / name)
    return tmp / name / "requests.parquet"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    trace = planted(np.random.default_rng(4))
    path = ingested(trace, tmp_path_factory.mktemp("agent_sql"))
    calls = pl.read_parquet(path).with_row_index("row_id")
    names = sorted(calls["model"].unique().to_list())
    ids = {name: i for i, name in enumerate(names)}
    model = fit_agent_model(path, 600, settings=AgentModelSettings(min_start_gaps=2), clients=(ids, -1, ["model"]))
    return trace, chains(calls), ids, model["agents"]


def chains(calls: pl.DataFrame) -> pl.DataFrame:
    """Each call with its chain (its subagent, else its session), step, gap from the previous call's
    end, whether it opens a turn, and its context growth, by Polars windows."""
    sub = pl.col("call_kind") == "subagent"
    c = calls.with_columns(pl.when(sub).then(pl.col("parent_id")).otherwise(pl.col("session_id")).alias("chain"),
                           sub.alias("sub")).sort("chain", "arrival_s", "row_id")
    prev = lambda e: e.shift(1).over("chain")
    return c.with_columns(
        (pl.int_range(pl.len()).over("chain") + 1).alias("step"),
        (pl.col("arrival_s") - prev(pl.col("arrival_s") + pl.col("latency_s"))).alias("gap"),
        (prev(pl.col("turn")).is_null() | (prev(pl.col("turn")) != pl.col("turn"))).alias("opens"),
        (pl.col("input_tokens") - prev(pl.col("input_tokens"))).alias("growth"))


def qf(values) -> dict:
    x = np.asarray(values, dtype=float)
    return {"n": int(x.size), "quantiles": np.maximum.accumulate(np.quantile(x, PROBS, method="linear")).tolist()}


def pmf(counts: pl.Series) -> dict:
    vc = counts.value_counts().sort(counts.name)
    return {"values": vc[counts.name].to_list(), "probs": (vc["count"] / vc["count"].sum()).to_list()}


def assert_qf(got: dict, want: dict) -> None:
    assert got["n"] == want["n"]
    assert got["quantiles"] == pytest.approx(want["quantiles"], rel=1e-12, abs=1e-12)


def assert_pmf(got: dict, want: dict) -> None:
    assert got["values"] == want["values"]
    assert got["probs"] == pytest.approx(want["probs"], rel=1e-12)


def test_counts_and_shares(fitted):
    trace, c, _, m = fitted
    main, sub = c.filter(~pl.col("sub")), c.filter(pl.col("sub"))
    assert m["sessions_per_call"] == main["session_id"].n_unique() / trace.height
    assert m["canceled_share"] == trace["canceled"].mean()
    spawning = sub.select("session_id", "turn").unique().height
    assert m["subagents"]["spawn_share"] == spawning / main.select("session_id", "turn").unique().height
    assert m["gap_measure"] == "from previous end"


def test_pmfs(fitted):
    _, c, _, m = fitted
    main, sub = c.filter(~pl.col("sub")), c.filter(pl.col("sub"))
    assert_pmf(m["turns"], pmf(main.group_by("session_id").agg(pl.col("turn").n_unique().alias("n"))["n"]))
    assert_pmf(m["calls_per_turn"], pmf(main.group_by("session_id", "turn").len("n")["n"]))
    assert_pmf(m["subagents"]["fanout"], pmf(sub.group_by("session_id", "turn").agg(pl.col("chain").n_unique().alias("n"))["n"]))
    assert_pmf(m["subagents"]["calls"], pmf(sub.group_by("chain").len("n")["n"]))
    assert set(m["turns"]["values"]) == {1, 2, 3}


def test_quantile_functions(fitted):
    trace, c, _, m = fitted
    main, sub = c.filter(~pl.col("sub")), c.filter(pl.col("sub"))
    later = lambda f: f.filter(pl.col("step") > 1)
    assert_qf(m["latency_s"], qf(trace["latency_s"]))
    assert_qf(m["think_gap_s"], qf(later(main).filter(pl.col("opens"))["gap"]))
    assert_qf(m["tool_gap_s"], qf(later(main).filter(~pl.col("opens"))["gap"]))
    assert_qf(m["subagent_gap_s"], qf(later(sub)["gap"]))
    assert_qf(m["input_tokens"]["main_first"], qf(main.filter(pl.col("step") == 1)["input_tokens"]))
    assert_qf(m["input_tokens"]["main_turn"], qf(later(main).filter(pl.col("opens"))["growth"]))
    assert_qf(m["input_tokens"]["subagent_growth"], qf(later(sub)["growth"]))
    ratio = pl.col("cached_tokens") / pl.col("input_tokens")
    assert_qf(m["cached_ratio"]["main_later"], qf(later(main).select(ratio).to_series()))
    assert_qf(m["cached_ratio"]["subagent_first"], qf(sub.filter(pl.col("step") == 1).select(ratio).to_series()))
    assert_qf(m["output_tokens"]["main_in_turn"], qf(main.filter(~pl.col("opens"))["output_tokens"]))
    assert_qf(m["output_tokens"]["subagent_in_turn"], qf(later(sub)["output_tokens"]))


def test_subagent_start_and_depth(fitted):
    trace, c, _, m = fitted
    s = m["subagents"]
    # a subagent's first call after the latest main call of its session at or before it
    firsts = c.filter(pl.col("sub") & (pl.col("step") == 1)).sort("arrival_s")
    mains = c.filter(~pl.col("sub")).select("session_id", pl.col("arrival_s").alias("main_s")).sort("main_s")
    joined = firsts.join_asof(mains, left_on="arrival_s", right_on="main_s", by="session_id", strategy="backward", check_sortedness=False)
    assert_qf(s["start_s"], qf((joined["arrival_s"] - joined["main_s"]).drop_nulls()))
    # level 2: subagents whose spawning call (parent_id less its `#k`) is a subagent's call
    sub = c.filter(pl.col("sub"))
    spawner = pl.col("chain").str.replace(r"#[0-9]+$", "")
    chains_ = sub.select("chain", spawner.alias("spawner")).unique()
    nested = chains_.join(sub.select(pl.col("request_id").alias("spawner"), pl.col("chain").alias("up")), on="spawner")
    assert nested.height == len([i for i in range(60) if i % 5 == 0 and i % 4 != 3])  # the planted ones
    assert s["depth_max"] == 2
    assert s["nested_share"] == [nested["up"].n_unique() / (chains_.height - nested.height)]


def test_per_client_models(fitted):
    _, c, ids, m = fitted
    main = c.filter(~pl.col("sub"))
    firsts = main.filter(pl.col("step") == 1).select("session_id", pl.col("model").alias("owner"))
    calls = c.group_by("model").len("calls")
    started = firsts.group_by(pl.col("owner").alias("model")).len("sessions")
    share = calls.join(started, on="model", how="left").fill_null(0)
    got = {name: m["clients"][i]["sessions_per_call"] for name, i in ids.items()}
    assert got == pytest.approx({r["model"]: r["sessions"] / r["calls"] for r in share.iter_rows(named=True)}, rel=1e-12)
    assert got["tool-model"] == 0.0 and got["sub-A"] == 0.0  # they start no session
    later = c.filter(pl.col("step") > 1).join(firsts, on="session_id").filter(~pl.col("sub"))
    for owner in ("A", "B"):
        want = later.filter(pl.col("owner") == owner).select(pl.col("model").replace_strict(ids).alias("client"))
        assert_pmf(m["clients"][ids[owner]]["main"], pmf(want["client"]))
        subs = c.filter(pl.col("sub") & (pl.col("step") == 1)).join(firsts, on="session_id").filter(pl.col("owner") == owner)
        assert_pmf(m["clients"][ids[owner]]["subagent"], pmf(subs.select(pl.col("model").replace_strict(ids))["model"]))


def start_cv(t: np.ndarray, window_s: float) -> float:
    """The CV of the gaps between consecutive session starts inside one window, each over its
    window's mean gap (numpy, over the sorted starts)."""
    t = np.sort(t)
    w = np.floor(t / window_s)
    same = w[1:] == w[:-1]
    g, gw = np.diff(t)[same], w[1:][same]
    means = {k: g[gw == k].mean() for k in np.unique(gw)}
    return float(np.std(g / np.array([means[k] for k in gw])))


def test_session_start_spread_by_window(tmp_path):
    """Over windows short enough that sessions start in many (about four a window), the trace's and
    each client's spread of session starts equal numpy's over the sorted starts, gaps that cross a
    window's edge left out."""
    trace = planted(np.random.default_rng(9))
    path = ingested(trace, tmp_path)
    ids = {name: i for i, name in enumerate(sorted(trace["model"].unique().to_list()))}
    model = fit_agent_model(path, 30, settings=AgentModelSettings(min_start_gaps=2), clients=(ids, -1, ["model"]))["agents"]
    firsts = (pl.read_parquet(path).with_row_index("row_id").filter(pl.col("call_kind") == "main")
              .sort("arrival_s", "row_id").group_by("session_id", maintain_order=True).first())
    assert model["session_iat_cv"] == pytest.approx(start_cv(firsts["arrival_s"].to_numpy(), 30.0), rel=1e-12)
    for owner in ("A", "B"):
        t = firsts.filter(pl.col("model") == owner)["arrival_s"].to_numpy()
        assert model["clients"][ids[owner]]["session_iat_cv"] == pytest.approx(start_cv(t, 30.0), rel=1e-12)
