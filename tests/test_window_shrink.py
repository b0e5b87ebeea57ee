"""Generated window counts vary as much as the source's, not twice as much. Simulated truth: one
client, Poisson inside 600 s windows whose rates vary little (sd 2 % of the mean: the count noise
dominates the fitted rates' spread), so the source's IDC at 600 s is 1 + W var(r) / mean(r)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from servetrace.bundle.fit import bundle_from_requests
from servetrace.generation import GenerateOptions, compose, generate_table
from servetrace.generation.arrivals import GAMMA, WindowParams, shrunk
from servetrace.settings import Settings
from servetrace.stats import fidelity as m
from test_bundle_fit import SOURCE, canonical

W, WINDOWS, MEAN, SD = 600.0, 160, 1.0, 0.02


def steady_trace(seed: int) -> tuple[pl.DataFrame, float]:
    rng = np.random.default_rng(seed)
    rates = MEAN + SD * rng.standard_normal(WINDOWS)
    n = rng.poisson(rates * W)
    t = np.sort(np.repeat(np.arange(WINDOWS) * W, n) + rng.uniform(0, W, n.sum()))
    frame = pl.DataFrame({"arrival_s": t, "client_id": ["a"] * len(t),
                          "input_tokens": np.full(len(t), 100, np.int32), "output_tokens": np.full(len(t), 10, np.int32),
                          "failed": [False] * len(t)})
    return canonical(frame), 1 + W * SD**2 / MEAN


def test_shrinking_takes_the_count_noise_out_of_the_rates():
    """Poisson noise r / W per window against var 0.025 -> factor sqrt(1 - 1/600 / 0.01); zeros stay."""
    r = np.array([[1.1, 0.9, 1.0, 0.0, 1.2, 0.8]])  # var 0.025 (ddof 1)
    p = WindowParams(r, np.full(r.shape, GAMMA, np.int8), np.ones(r.shape))
    got = shrunk(p, np.full(6, 600.0)).rate[0]
    on = r[0] > 0
    f = np.sqrt(1 - 1.0 / 600 / 0.025)
    assert got[on] == pytest.approx(1.0 + f * (r[0, on] - 1.0), rel=1e-12)
    assert got[3] == 0.0 and got[on].mean() == pytest.approx(1.0, rel=1e-12)
    # a partly covered edge window weighs by its seconds: the expected count keeps
    cover = np.array([300.0, 600, 600, 600, 600, 60])
    edge = shrunk(p, cover).rate[0]
    assert (edge * cover).sum() == pytest.approx((r[0] * cover).sum(), rel=1e-12)
    # a Gamma(shape 0.01) process (CV 10): 100 x the noise, more than the spread: flat
    assert shrunk(WindowParams(r, p.family, np.full(r.shape, 0.01)), np.full(6, 600.0)).rate[0, on] == pytest.approx(np.ones(5))


def test_generated_idc_at_the_window_scale_is_the_sources(monkeypatch):
    """Median over 3 traces x 2 seeds: generated IDC(600 s) within 15 % of the source's (each
    trace's IDC over 160 windows has a sampling spread of about sqrt(2 / 159) ~ 11 %); unshrunk
    the generator adds the count noise again and lands about +80 % over it."""
    ours, unshrunk = [], []
    for seed in (1, 2, 3):
        frame, planted = steady_trace(seed)
        source = m.idc(frame["arrival_s"].to_numpy(), W)
        bundle = bundle_from_requests(frame, Settings(), SOURCE)
        gen = lambda s: m.idc(np.sort(generate_table(bundle, GenerateOptions(seed=s))[0]["arrival_s"].to_numpy()), W)
        ours += [gen(s) / source - 1 for s in (1, 2)]
        with monkeypatch.context() as mp:
            mp.setattr(compose, "shrunk", lambda p, w: p)
            unshrunk += [gen(s) / source - 1 for s in (1, 2)]
    assert abs(np.median(ours)) <= 0.15, (ours, unshrunk)
    assert np.median(unshrunk) > 0.5, (ours, unshrunk)
