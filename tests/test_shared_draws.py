"""The arrival model's cox and cox-renewal candidates run in the same modulated time for a seed:
inside `shared_draws` a modulation is drawn once and handed on, and nothing it hands on differs
from a fresh draw (bit for bit), whatever the blocks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from servetrace.bundle import arrival_model
from servetrace.generation import modulation
from servetrace.generation.modulation import Modulation, shared_draws

W = 600.0
SPEC = {"theta_s": [1.0, 8.0, 60.0, 400.0], "sigma2": [0.5, 0.0, 0.2, 0.1], "bin_s": 0.25}
SPANS = [(0.0, 1.5 * W, 0), (1.5 * W, 4 * W, 1), (4 * W, 4.2 * W, 2)]


def knots(mod: Modulation) -> list[tuple[np.ndarray, np.ndarray]]:
    return [mod.knots(b, e, block) for b, e, block in SPANS]


def test_knots_inside_shared_draws_equal_fresh_ones_and_are_drawn_once(monkeypatch):
    fresh = knots(Modulation(SPEC, 7, 0.0, W, (2,)))
    drawn = []
    windows = Modulation._windows
    monkeypatch.setattr(Modulation, "_windows", lambda self, *a: drawn.append(a) or windows(self, *a))
    with shared_draws():
        first = knots(Modulation(SPEC, 7, 0.0, W, (2,)))
        second = knots(Modulation(SPEC, 7, 0.0, W, (2,)))
        other = knots(Modulation(SPEC, 8, 0.0, W, (2,)))  # another seed is drawn anew
    assert len(drawn) == 2 * len(SPANS)
    for (t0, u0), (t1, u1), (t2, u2) in zip(fresh, first, second):
        np.testing.assert_array_equal(t0, t1)
        np.testing.assert_array_equal(u0, u1)
        assert t2 is t1 and u2 is u1 and not u2.flags.writeable
    assert not np.array_equal(other[0][1], fresh[0][1])
    assert modulation._shared.get() is None  # nothing kept after the block


def test_the_draw_is_the_ou_components_filtered_and_summed():
    """An independent computation of M: each component's AR(1) by scipy.signal.lfilter from the
    stationary start, summed, exponentiated, each window scaled to mean 1."""
    mod = Modulation(SPEC, 3, 0.0, W)
    m = mod._windows(0, 3, 5)
    keep = np.asarray(SPEC["sigma2"]) > 0
    theta, s2 = np.asarray(SPEC["theta_s"])[keep], np.asarray(SPEC["sigma2"])[keep]
    rng = np.random.default_rng(np.random.SeedSequence([3, modulation.MODULATION_STREAM, 5]))
    x0 = rng.standard_normal(len(theta)) * np.sqrt(s2)
    eps = rng.standard_normal((3 * mod.per, len(theta)))
    a = np.exp(-mod.step / theta)
    x = sum(signal.lfilter([np.sqrt(v * (1 - c ** 2))], [1.0, -c], e, zi=[c * x])[0]
            for c, v, e, x in zip(a, s2, eps.T, x0))
    want = np.exp(x).reshape(3, -1)
    np.testing.assert_allclose(m, want / want.mean(axis=1, keepdims=True), rtol=1e-9)


@pytest.mark.parametrize("limit", [0, modulation.SHARED_BYTES])
def test_sharing_is_bounded_and_changes_nothing(monkeypatch, limit):
    monkeypatch.setattr(modulation, "SHARED_BYTES", limit)
    fresh = knots(Modulation(SPEC, 7, 0.0, W))
    with shared_draws():
        knots(Modulation(SPEC, 7, 0.0, W))
        again = knots(Modulation(SPEC, 7, 0.0, W))
        assert (modulation._shared.get()["bytes"] > 0) == (limit > 0)
    for (t0, u0), (t1, u1) in zip(fresh, again):
        np.testing.assert_array_equal(t0, t1)
        np.testing.assert_array_equal(u0, u1)


def test_the_arrival_model_is_the_same_with_shared_draws(monkeypatch):
    """choose() with the candidates sharing their seeds' modulations equals choose() drawing each anew."""
    import contextlib

    from test_arrival_model import BIN_S, planted_cox_bundle
    from test_generate import bundle, client
    from servetrace.generation import GenerateOptions, generate_table

    t = generate_table(planted_cox_bundle((0.6, 0.4, 0.2, 0.0)), GenerateOptions(seed=9))[0]["arrival_s"].to_numpy()
    b = bundle([client("a", 4.0, 12)], 12)
    counts = arrival_model.covered_counts(*np.unique((t // BIN_S).astype(np.int64), return_counts=True), b)
    shared = arrival_model.choose(t, counts, b)
    monkeypatch.setattr(modulation, "shared_draws", contextlib.nullcontext)
    assert arrival_model.choose(t, counts, b) == shared
    assert shared["chosen"] in ("cox", "cox-renewal")
