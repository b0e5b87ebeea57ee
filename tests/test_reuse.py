"""Block reuse: stack distances, the LRU prefix-cache curve (exact and SHARDS), prefix trees,
sessions inferred from prefix chains, think times; checked against direct simulations and
traces with known structure."""

from collections import OrderedDict
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from reuse_traces import session_trace
from servetrace import io
from servetrace.reuse.analysis import analyze
from servetrace.reuse.blocks import read_refs
from servetrace.reuse.chains import infer_parents, session_roots
from servetrace.reuse.curve import capacity_ladder, hit_curve
from servetrace.reuse.stack import earlier_greater, stack_distances
from test_stages_support import canonical, run_stages

MOONCAKE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mooncake" / "synthetic_trace.jsonl"


def lru_stack(blocks):
    """Stack distances by a list kept in LRU order (the textbook definition)."""
    out, stack = [], []
    for b in blocks:
        if b in stack:
            out.append(len(stack) - 1 - stack.index(b))
            stack.remove(b)
        else:
            out.append(-1)
        stack.append(b)
    return np.array(out)


def lru_prefix_hits(requests, capacity):
    """Blocks an LRU prefix cache of `capacity` blocks hits: each request hits its leading
    cached run, then every block it used becomes most recent (evicting the least recent)."""
    cache, hits = OrderedDict(), 0
    for blocks in requests:
        leading = True
        for b in blocks:
            leading = leading and b in cache
            hits += leading
            cache.pop(b, None)
            cache[b] = True
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits


@pytest.mark.parametrize("n,distinct", [(1, 1), (2, 1), (50, 7), (2000, 300), (3000, 2900)])
def test_stack_distances_equal_an_lru_list(n, distinct):
    blocks = np.random.default_rng(n).integers(0, distinct, n)
    assert (stack_distances(blocks) == lru_stack(list(blocks))).all()


def test_earlier_greater_counts():
    x = np.random.default_rng(1).integers(0, 70, 800)
    assert (earlier_greater(x) == [(x[:i] > x[i]).sum() for i in range(len(x))]).all()


def test_lru_curve_equals_a_simulated_prefix_cache(tmp_path):
    table, _ = session_trace(n_sessions=150, seed=2)
    path = tmp_path / "r.parquet"
    io.write_parquet(path, table, {})
    refs = read_refs(path, 16)[1]
    caps = np.array([1, 8, 40, 100, 400, 5000])
    curve = hit_curve(refs, caps)
    reqs = [list(r) for r in table["hash_ids"].to_pylist()]
    total = sum(map(len, reqs))
    want = [lru_prefix_hits(reqs, c) / total for c in caps]
    assert curve["hit_rate"].to_list()[:-1] == pytest.approx(want, abs=1e-12)
    assert curve["hit_rate"][-1] == pytest.approx(lru_prefix_hits(reqs, 10 ** 9) / total)


@pytest.mark.skipif(not MOONCAKE.exists(), reason="shared Mooncake trace absent")
def test_shards_is_within_001_of_exact_on_mooncake(tmp_path):
    from servetrace.ingest import ingest_trace

    ingest_trace(MOONCAKE, tmp_path)
    path = tmp_path / "requests.parquet"
    exact = read_refs(path, 512)[1]
    ladder = capacity_ladder(len(np.unique(exact.pid)))
    ex = hit_curve(exact, ladder)["hit_rate"].to_numpy()
    assert ex[-1] == pytest.approx(0.6396, abs=1e-4)  # 1 - distinct / references, the plain count
    for rate in (0.1, 0.25):
        sampled = read_refs(path, 512, rate=rate)[1]
        assert len(sampled.pid) < 0.4 * len(exact.pid)
        err = np.abs(hit_curve(sampled, ladder)["hit_rate"].to_numpy() - ex).max()
        assert err <= 0.01, (rate, err)


def test_sessions_from_prefix_chains_are_recovered(tmp_path):
    table, truth = session_trace(n_sessions=400, seed=4)
    path = tmp_path / "r.parquet"
    io.write_parquet(path, table, {})
    refs = read_refs(path, 16)[1]
    parent, _ = infer_parents(refs, table["input_tokens"].to_numpy())
    root = session_roots(parent)
    got = pl.DataFrame({"root": root, "session": truth["session"]})
    # one inferred session per true session, and no inferred session mixing two
    assert got.group_by("session").agg(pl.col("root").n_unique())["root"].max() == 1
    assert got.group_by("root").agg(pl.col("session").n_unique())["session"].max() == 1
    assert ((parent >= 0) == (truth["turn"].to_numpy() > 1)).all()


def test_shared_prefix_groups_and_stage(tmp_path):
    table, truth = session_trace(n_sessions=400, seed=5, latency_s=2.0, think_s=30.0)
    findings, tables = run_stages(tmp_path, table)
    s, p = findings["sessions"], findings["prefix"]
    assert s["source"] == "inferred from prefix chains"
    assert s["sessions"] == truth["session"].n_unique()
    assert s["follow_up_share"] == pytest.approx(float((truth["turn"] > 1).mean()))
    # think time from the previous turn's end: exponential(30) -> median 30 ln 2; latency 2 s known
    assert s["gap_p50_s"] > s["think_p50_s"]
    assert s["think_p50_s"] == pytest.approx(30 * np.log(2), rel=0.15)
    assert p["infinite_hit_rate"] == pytest.approx(p["ideal_hit_rate"], abs=1e-12)  # SQL and numpy agree
    first = truth.filter(pl.col("turn") == 1)
    groups = tables["prefix_groups"]
    want = first.filter(pl.col("group") >= 0).group_by("group").len().sort("len", descending=True)
    # groups used by two or more sessions, in popularity order, with their lengths (3 (g + 2) blocks)
    assert groups["first_turns"].to_list() == want.filter(pl.col("len") >= 2)["len"].to_list()
    assert sorted(groups["depth_blocks"].to_list()) == sorted((want.filter(pl.col("len") >= 2)["group"] + 2) * 3)
    curve = tables["prefix_lru_curve"]
    assert set(curve["block_size"]) == {16, 64, 512, 2048}  # re-blocked where 16 divides


def test_think_time_from_previous_end_with_explicit_ids(tmp_path):
    # 100 sessions, 3 turns; each turn takes 20 s, the next arrives 60 s after the previous one
    t = np.concatenate([np.arange(100) * 1000.0 + k * 60 for k in range(3)])
    sess = [f"s{i}" for i in range(100)] * 3
    findings, tables = run_stages(tmp_path, canonical(t, session_id=sess, input_tokens=np.ones(300),
                                                      output_tokens=np.ones(300), latency_s=np.full(300, 20.0)))
    s = findings["sessions"]
    assert s["source"] == "session ids"
    assert s["gap_p50_s"] == pytest.approx(60) and s["think_p50_s"] == pytest.approx(40)
    assert s["thinks"] == 200 and s["follow_ups"] == 200
    assert tables["session_turns"]["turn"].to_list() == [1, 2, 3]
