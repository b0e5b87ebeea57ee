"""A session trace's arrival model is fitted on its session starts and its starts run in it.
Simulated truth: session starts from a planted Cox process (variance 0.8 at 1 s), each session
1 + geometric turns a few seconds apart. The turns cluster after their start; a model fitted on
every request reads that clustering as modulation (blurring the starts' own), and the session
layer would then add it twice."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from servetrace import io
from servetrace.bundle.arrival_model import with_arrival_model
from servetrace.bundle.fit import fit_bundle
from servetrace.generation import GenerateOptions, generate_table
from servetrace.stats import fidelity as m
from test_arrival_fidelity import cox_trace
from test_bundle_fit import canonical

PLANTED = (0.8, 0.0, 0.0, 0.0)  # variances of the components at 1, 8, 60, 400 s
WINDOWS = 12
SCALES = (1, 10, 60)


def session_trace(seed: int) -> tuple[pl.DataFrame, np.ndarray]:
    """(requests, start times): starts at window rates 1 +- 0.3 req/s in the planted modulated
    time; turns 1 + geometric(0.5) - 1 per session (mean 2), gaps exponential of mean 4 s."""
    rates = 1.0 + 0.3 * np.sin(np.arange(WINDOWS) / WINDOWS * 2 * np.pi)
    starts = cox_trace(PLANTED, rates, seed=seed)
    rng = np.random.default_rng(seed + 5)
    turns = rng.geometric(0.5, len(starts))
    session = np.repeat(np.arange(len(starts)), turns)
    first = np.cumsum(turns) - turns
    turn = np.arange(len(session)) - np.repeat(first, turns)
    gaps = np.where(turn > 0, rng.exponential(4.0, len(session)), 0.0)
    t = np.repeat(starts, turns) + np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first], turns)
    frame = pl.DataFrame({"arrival_s": t, "client_id": ["a"] * len(t), "session_id": [f"s{s}" for s in session],
                          "input_tokens": rng.integers(10, 2000, len(t)).astype(np.int32),
                          "output_tokens": rng.integers(1, 500, len(t)).astype(np.int32), "failed": [False] * len(t)})
    return canonical(frame.sort("arrival_s")), np.sort(starts)


def starts_of(table) -> np.ndarray:
    f = pl.from_arrow(table.select(["arrival_s", "session_id"]))
    return np.sort(f.group_by("session_id").agg(pl.col("arrival_s").min())["arrival_s"].to_numpy())


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    d = tmp_path_factory.mktemp("starts")
    frame, starts = session_trace(seed=21)
    io.write_parquet(d / "requests.parquet", frame.to_arrow(), {"servetrace.format": "test"})
    return d, frame, starts, fit_bundle(d)


def test_the_model_is_fitted_on_the_starts(fitted):
    d, frame, starts, b = fitted
    model = b["arrival_model"]
    assert model["fitted_on"] == "session starts"
    assert model["start_share"] == pytest.approx(len(starts) / frame.height, rel=1e-12)
    assert model["source"]["requests"] == len(starts)
    got = np.asarray(model["modulation"]["sigma2"])
    assert got[0] == pytest.approx(PLANTED[0], abs=0.15) and got.sum() == pytest.approx(sum(PLANTED), rel=0.2)
    assert model["chosen"] != "renewal"
    # on every request, the turns (seconds after their start) blur the starts' 1 s modulation and
    # add one at 8 s of their own: that fit is not the starts' process
    every = with_arrival_model({k: v for k, v in b.items() if k not in ("sessions", "arrival_model")},
                               d / "requests.parquet")["arrival_model"]["modulation"]["sigma2"]
    assert abs(every[0] - PLANTED[0]) > 0.3 and every[1] > 0.05, every


def test_generated_starts_follow_the_starts_model(fitted):
    """Starts' IDC at 1 / 10 / 60 s within 20 % of the source starts' (median of 3 seeds); the
    renewal starts (an older bundle's, its model fitted on every request) miss at 1 and 10 s."""
    _, _, starts, b = fitted
    source = {s: m.idc(starts, s) for s in SCALES}

    def errors(bundle):
        runs = [starts_of(generate_table(bundle, GenerateOptions(seed=seed))[0]) for seed in (1, 2, 3)]
        return {s: float(np.median([abs(m.idc(r, s) - source[s]) / source[s] for r in runs])) for s in SCALES}

    ours = errors(b)
    assert all(e <= 0.20 for e in ours.values()), (ours, source)
    renewal = errors({**b, "arrival_model": {**b["arrival_model"], "fitted_on": "requests"}})
    assert renewal[1] > 0.2 and renewal[10] > 0.3, (renewal, source)
