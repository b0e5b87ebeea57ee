"""Timestamps written on a coarse clock (BurstGPT: whole seconds): the clock is detected, the
bundle fit takes each window's CV from the counts per tick (dense) or the Sheppard-corrected gaps
(sparse), not from the ties, and a workload is compared with its source on the source's clock, so
the inter-arrival CV of ties is compared with ties."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from servetrace.bundle.fit import bundle_from_requests
from servetrace.generation import GenerateOptions, generate_table
from servetrace.settings import Settings
from servetrace.stats import clock as clock_module
from servetrace.stats import fidelity as m
from servetrace.stats.clock import clock_of, on_clock
from servetrace.validation.fidelity import fidelity
from test_bundle_fit import SOURCE, canonical


def test_the_clock_is_the_coarsest_grid_most_arrivals_sit_on():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 3600, 5000))
    assert clock_of(t) is None
    assert clock_of(np.floor(t)) == 1.0
    assert clock_of(np.floor(t / 3) * 3) == 3.0
    assert clock_of(np.round(t, 1)) == 0.1
    assert clock_of(np.round(t, 3)) is None  # a millisecond clock biases nothing: not coarse
    assert clock_of(1.7e9 + np.round(t, 3)) is None  # epoch seconds: float precision is no grid
    assert clock_of(1.7e9 + np.floor(t)) == 1.0
    mostly = np.floor(t)
    mostly[::20] += 0.5123  # 95 % on the grid
    assert clock_of(mostly) == 1.0
    mostly[::5] += 0.2345  # 75 %
    assert clock_of(mostly) is None


def test_on_clock_floors():
    assert on_clock(np.array([0.2, 1.7, 2.0]), 1.0).tolist() == [0.0, 1.0, 2.0]
    assert on_clock(np.array([0.2]), None).tolist() == [0.2]


CV, RATE, WINDOWS = 2.0, 20.0, 24  # 240 bins of 60 s: the source's own IDC(60) within ~10 %


def floored_renewal() -> pl.DataFrame:
    """A Gamma renewal process of CV 2 at 20 req/s written on a one-second clock: most gaps are
    ties and the gaps' CV is about 4.5, the clock's rather than the process's."""
    rng = np.random.default_rng(1)
    shape = 1 / CV**2
    n = int(RATE * WINDOWS * 600)
    t = np.floor(np.cumsum(rng.gamma(shape, 1 / (RATE * shape), n)))
    return canonical(pl.DataFrame({"arrival_s": t, "client_id": ["a"] * n, "input_tokens": np.full(n, 10, np.int32),
                                   "output_tokens": np.full(n, 5, np.int32), "failed": [False] * n}))


def arrival_checks(source: pl.DataFrame, bundle: dict, seeds=(1, 2, 3)) -> dict[str, float]:
    runs = []
    for seed in seeds:
        made = pl.from_arrow(generate_table(bundle, GenerateOptions(seed=seed))[0])
        f, _ = fidelity(source, made)
        runs.append({k: f["checks"][k]["value"] for k in ("iat_cv", "idc_1", "idc_10", "idc_60")}
                    | {"clock": f["source_clock_s"]})
    return {k: float(np.median([r[k] for r in runs])) for k in runs[0]}


def test_a_floored_trace_is_generated_back_on_its_clock(monkeypatch):
    """Fit, generate (continuous times), compare on the source's clock: IAT CV within 10 % and IDC
    within 20 % at 1 / 10 / 60 s (median of 3 seeds); the windows' CV comes back within 5 %. A fit
    blind to the clock learns the ties' CV (~4.4) as the process's and misses."""
    source = floored_renewal()
    assert m.iat_cv(source["arrival_s"].to_numpy()) > 4
    bundle = bundle_from_requests(source, Settings(), SOURCE)
    assert bundle["arrival_model"]["source"]["clock_s"] == 1.0
    window_cv = np.nanmedian(np.asarray(bundle["clients"][0]["windows"]["cv"], dtype=float))
    assert window_cv == pytest.approx(CV, rel=0.05)
    got = arrival_checks(source, bundle)
    assert got["clock"] == 1.0
    assert got["iat_cv"] <= 0.10, got
    for scale in ("idc_1", "idc_10", "idc_60"):
        assert got[scale] <= 0.20, got
    monkeypatch.setattr(clock_module, "clock_of_batches", lambda *a: None)
    tied = bundle_from_requests(source, Settings(), SOURCE)
    tied = {**tied, "arrival_model": {**tied["arrival_model"], "chosen": "renewal"}}
    tied_cv = np.nanmedian(np.asarray(tied["clients"][0]["windows"]["cv"], dtype=float))
    assert tied_cv > 3  # the ties' CV, learnt as the process's
    old = arrival_checks(source, tied)
    assert old["iat_cv"] > 0.10 or old["idc_1"] > 0.20, old


def test_validate_reads_a_workload_on_the_source_clock():
    """The same continuous trace against its own floored copy: alike once read on the clock
    (before, the ties' CV of ~4.5 was compared with a continuous CV of ~2)."""
    rng = np.random.default_rng(2)
    t = np.cumsum(rng.gamma(0.25, 1 / (RATE * 0.25), 60_000))
    continuous = pl.DataFrame({"arrival_s": t})
    floored = pl.DataFrame({"arrival_s": np.floor(t)})
    f, _ = fidelity(floored, continuous)
    assert f["source_clock_s"] == 1.0
    assert f["checks"]["iat_cv"]["value"] == pytest.approx(0.0, abs=1e-9)
    f, _ = fidelity(continuous, continuous)
    assert f["source_clock_s"] is None


@pytest.mark.parametrize("cv,rate", [(1.5, 0.3), (0.5, 0.5)])
def test_a_sparse_floored_trace_keeps_its_cv(cv, rate):
    """Under one arrival per tick the gaps are seen whole, each end moved by the rounding: the
    Sheppard-corrected CV comes back within 10 %."""
    rng = np.random.default_rng(5)
    shape = 1 / cv**2
    n = int(rate * 24 * 600)
    t = np.floor(np.cumsum(rng.gamma(shape, 1 / (rate * shape), n)))
    frame = canonical(pl.DataFrame({"arrival_s": t, "client_id": ["a"] * n, "input_tokens": np.full(n, 10, np.int32),
                                    "output_tokens": np.full(n, 5, np.int32), "failed": [False] * n}))
    bundle = bundle_from_requests(frame, Settings(), SOURCE)
    assert bundle["arrival_model"]["source"]["clock_s"] == 1.0
    assert bundle["clients"][0]["iat"]["cv"] == pytest.approx(cv, rel=0.1)
