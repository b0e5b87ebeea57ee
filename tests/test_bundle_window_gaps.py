"""A window's inter-arrival statistics count only the gaps whose both ends lie in the window: a
Poisson window after a sparse or idle one keeps CV 1 (the gap across the edge once made it 1.6, and
39 after an idle window), in the per-client windows and in the aggregate."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from servetrace.bundle.fit import bundle_from_requests
from servetrace.settings import Settings

WINDOW_S = 600
SOURCE = {"path": "synthetic", "sha256": None, "rows": None, "format": "synthetic"}


def poisson(rng, rate, lo, hi):
    n = rng.poisson(rate * (hi - lo))
    return np.sort(rng.uniform(lo, hi, n))


def fit(arrivals: dict[str, np.ndarray]) -> dict:
    frames = [pl.DataFrame({"arrival_s": t, "client_id": [c] * t.size, "input_tokens": np.full(t.size, 10),
                            "output_tokens": np.full(t.size, 5)}) for c, t in arrivals.items()]
    return bundle_from_requests(pl.concat(frames).sort("arrival_s"), Settings(window_s=WINDOW_S), SOURCE)


def cv_sd(n: int) -> float:
    """Standard error of an exponential sample's CV (about 1 / sqrt(n))."""
    return 1 / np.sqrt(n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poisson_window_after_sparse_and_idle_windows_has_cv_one(seed):
    rng = np.random.default_rng(seed)
    rate = 5.0
    # windows: 0 sparse (4 arrivals near its start), 1 Poisson, 2 idle, 3 Poisson
    t = np.concatenate([[1.0, 2.0, 3.0, 4.0], poisson(rng, rate, 600, 1200), poisson(rng, rate, 1800, 2400)])
    bundle = fit({"a": t})
    (client,) = bundle["clients"]
    w = client["windows"]
    assert w["start_s"] == [0, 600, 1800]  # a client's windows with arrivals
    n = [int(((t >= s) & (t < s + WINDOW_S)).sum()) for s in w["start_s"]]
    for i in (1, 2):
        assert w["cv"][i] == pytest.approx(1.0, abs=4 * cv_sd(n[i]))
        # and exactly the CV of the window's own gaps (sample std, as the fit computes it)
        inside = np.diff(t[(t >= w["start_s"][i]) & (t < w["start_s"][i] + WINDOW_S)])
        assert w["cv"][i] == pytest.approx(inside.std(ddof=1) / inside.mean(), rel=1e-9)
    gaps = np.diff(t[:4])
    assert w["cv"][0] == pytest.approx(gaps.std(ddof=1) / gaps.mean(), rel=1e-9)
    # the aggregate of a one-client trace is the same windows (and none for the idle one)
    assert bundle["aggregate"]["window_start_s"] == [0, 600, 1200, 1800]
    assert bundle["aggregate"]["cv"][1] == pytest.approx(w["cv"][1], rel=1e-9)
    assert bundle["aggregate"]["cv"][2] is None
    assert bundle["aggregate"]["cv"][3] == pytest.approx(w["cv"][2], rel=1e-9)
    # the client's whole-trace CV still counts every gap, the idle stretch included
    every = np.diff(t)
    assert client["iat"]["cv"] == pytest.approx(every.std(ddof=1) / every.mean(), rel=1e-9)


def test_aggregate_windows_ignore_gaps_across_edges_with_two_clients():
    rng = np.random.default_rng(5)
    a = np.concatenate([poisson(rng, 2.0, 0, 600), poisson(rng, 2.0, 1200, 1800)])  # idle window 1
    b = np.concatenate([[100.0, 300.0], poisson(rng, 3.0, 600, 1800)])
    bundle = fit({"a": a, "b": b})
    t = np.sort(np.concatenate([a, b]))
    for i, start in enumerate(bundle["aggregate"]["window_start_s"]):
        inside = np.diff(t[(t >= start) & (t < start + WINDOW_S)])
        assert bundle["aggregate"]["cv"][i] == pytest.approx(inside.std(ddof=1) / inside.mean(), rel=1e-9)
        assert bundle["aggregate"]["cv"][i] == pytest.approx(1.0, abs=4 * cv_sd(inside.size))
    cv = {c["id"]: dict(zip(c["windows"]["start_s"], c["windows"]["cv"])) for c in bundle["clients"]}
    assert 600 not in cv["a"]  # no arrival in window 1
    assert cv["a"][1200] == pytest.approx(1.0, abs=4 * cv_sd(1200))  # after the idle window
    assert cv["b"][600] == pytest.approx(1.0, abs=4 * cv_sd(1800))  # after two arrivals in window 0
