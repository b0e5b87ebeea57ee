"""Window-rate shrinking for session traces: a window's request count varies with its sessions'
turns, not only with its starts. Simulated truth: one client, Poisson session starts inside 600 s
windows whose rates vary little (sd 2 % of the mean), 1 + geometric(0.5) - 1 turns (mean 2),
exponential gaps of 20 s: a window's requests vary about E[m^2] / E[m] = 3 times their mean
from the clumping alone, which the fitted window rates and start shares carry as noise."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from servetrace import io
from servetrace.bundle.fit import fit_bundle
from servetrace.generation import GenerateOptions, compose, generate_table
from servetrace.generation.clumping import shrunk_start_shares, window_clumping
from servetrace.stats import fidelity as m
from test_bundle_fit import canonical

W, WINDOWS, MEAN, SD, GAP = 600.0, 160, 0.2, 0.02, 20.0


def sessions_trace(seed: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    rates = MEAN * (1 + SD * rng.standard_normal(WINDOWS))
    n = rng.poisson(rates * W)
    starts = np.sort(np.repeat(np.arange(WINDOWS) * W, n) + rng.uniform(0, W, n.sum()))
    turns = rng.geometric(0.5, len(starts))
    session = np.repeat(np.arange(len(starts)), turns)
    first = np.cumsum(turns) - turns
    turn = np.arange(len(session)) - np.repeat(first, turns)
    gaps = np.where(turn > 0, rng.exponential(GAP, len(session)), 0.0)
    t = np.repeat(starts, turns) + np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first], turns)
    keep = t < WINDOWS * W
    return t[keep], session[keep], rng


def _model(values, probs, gap_s: float) -> dict:
    return {"turns": {"values": values, "probs": probs}, "gap_s": {"probs": [0.0, 1.0], "quantiles": [gap_s, gap_s]},
            "first_new_tokens": {"probs": [0.0, 1.0], "quantiles": [10.0, 10.0]}}


def test_clumping_factor_on_known_session_models():
    """K = E[m^2] / E[m] when a session's turns share its window; 1 for one-request sessions;
    towards 1 when the gaps are far longer than the window (every turn in a window of its own)."""
    values, probs = [1, 2, 5], [0.5, 0.3, 0.2]
    m1, m2 = np.dot(values, probs), np.dot(np.square(values), probs)
    assert window_clumping(_model(values, probs, 1e-6), W) == pytest.approx(m2 / m1, rel=0.01)
    assert window_clumping(_model([1], [1.0], 1.0), W) == 1.0
    assert window_clumping(_model(values, probs, 10 * W), W) == pytest.approx(1.0, abs=1e-12)


def test_start_shares_lose_their_count_noise():
    """Geometric turns (p = 0.5): share noise 0.5^3 x Var(m) 2 / R = 0.25 / R; var of the shares
    0.0025 with R = 400 -> factor sqrt(1 - 0.000625 / 0.0025); the centre is the trace's share."""
    values = np.arange(1, 60)
    probs = 0.5**values / (0.5**values).sum()
    share = np.array([0.45, 0.55, 0.5, 0.5, 0.45, 0.55])
    r = np.full(6, 400.0)
    var = share.var(ddof=1)
    sess = {**_model(values.tolist(), probs.tolist(), 1.0),
            "start_share": {"origin_s": 0.0, "bin_s": 100.0, "share": share.tolist(), "requests": r.tolist()}}
    got = np.array(shrunk_start_shares(sess)["start_share"]["share"])
    noise = (share**3 * 2.0 / r).mean()  # Var(m) of geometric(0.5) is 2 (to 1e-12 over 59 turns)
    f = np.sqrt(1 - noise / var)
    assert got == pytest.approx(0.5 + f * (share - 0.5), rel=1e-9)
    assert (got * r).sum() == pytest.approx((share * r).sum(), rel=1e-12)  # starts kept
    older = {**sess, "start_share": {**sess["start_share"], "requests": None}}  # a bundle without per-bin requests
    assert shrunk_start_shares(older) is older


@pytest.fixture(scope="module")
def truth() -> float:
    """The planted process's IDC at 600 s: the mean over 20 simulated traces (about 2.96)."""
    return float(np.mean([m.idc(np.sort(sessions_trace(100 + s)[0]), W) for s in range(20)]))


def test_generated_idc_at_the_window_scale_is_the_planted_one(tmp_path, monkeypatch, truth):
    """Median over 3 fitted traces x 2 seeds: generated IDC(600 s) within 15 % of the planted
    process's; with neither the window rates nor the start shares shrunk, the generation adds the
    clumped count noise again and lands near +80 %."""
    ours, unshrunk = [], []
    for seed in (1, 2, 3):
        t, session, rng = sessions_trace(seed)
        frame = pl.DataFrame({"arrival_s": t, "client_id": ["a"] * len(t), "session_id": [f"s{s}" for s in session],
                              "input_tokens": rng.integers(10, 2000, len(t)).astype(np.int32),
                              "output_tokens": rng.integers(1, 500, len(t)).astype(np.int32),
                              "failed": [False] * len(t)})
        d = tmp_path / f"t{seed}"
        d.mkdir()
        io.write_parquet(d / "requests.parquet", canonical(frame.sort("arrival_s")).to_arrow(), {"servetrace.format": "test"})
        bundle = fit_bundle(d)
        assert bundle["arrival_model"]["fitted_on"] == "session starts"
        gen = lambda s: m.idc(np.sort(generate_table(bundle, GenerateOptions(seed=s))[0]["arrival_s"].to_numpy()), W)
        ours += [gen(s) / truth - 1 for s in (1, 2)]
        with monkeypatch.context() as mp:
            mp.setattr(compose, "shrunk", lambda p, w, **k: p)
            mp.setattr(compose, "shrunk_start_shares", lambda s: s)
            unshrunk += [gen(s) / truth - 1 for s in (1, 2)]
    assert abs(np.median(ours)) <= 0.15, (ours, unshrunk)
    assert np.median(unshrunk) > 0.5, (ours, unshrunk)
