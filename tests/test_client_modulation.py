"""Each dominant client gets a rate modulation of its own (ServeGen: the aggregate is a composition
of heterogeneous clients), the small ones share a pooled one, and generation runs each client in
its own modulated time. Simulated truth: two clients with different known modulations."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from servetrace.bundle import validate_bundle
from servetrace.bundle.arrival_model import dominant_clients
from servetrace.bundle.fit import bundle_from_requests
from servetrace.generation import GenerateOptions, generate_table
from servetrace.generation.modulation import modulation_groups
from servetrace.settings import Settings
from servetrace.stats import fidelity as m
from test_arrival_fidelity import cox_trace
from test_bundle_fit import SOURCE, canonical

# known variances of the components at THETAS = 1, 8, 60, 400 s, per client
PLANTED = {"a": (0.8, 0.0, 0.0, 0.0), "b": (0.0, 0.6, 0.0, 0.0)}
RATES = {"a": 3.0, "b": 5.0}
WINDOWS = 24


def rows(cid: str, seed: int) -> pl.DataFrame:
    rates = RATES[cid] * (1 + 0.4 * np.sin(np.arange(WINDOWS) / WINDOWS * 2 * np.pi + seed))
    t = cox_trace(PLANTED[cid], rates, seed=seed)
    rng = np.random.default_rng(seed + 7)
    return pl.DataFrame({"arrival_s": t, "client_id": [cid] * len(t),
                         "input_tokens": rng.integers(10, 2000, len(t)).astype(np.int32),
                         "output_tokens": rng.integers(1, 500, len(t)).astype(np.int32), "failed": [False] * len(t)})


def small_clients(n: int, seed: int) -> pl.DataFrame:
    """`n` Poisson clients of 0.05 req/s: under the share for a modulation of their own."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n):
        t = np.sort(rng.uniform(0, WINDOWS * 600.0, rng.poisson(0.05 * WINDOWS * 600)))
        parts.append(pl.DataFrame({"arrival_s": t, "client_id": [f"s{i}"] * len(t),
                                   "input_tokens": np.full(len(t), 100, np.int32),
                                   "output_tokens": np.full(len(t), 10, np.int32), "failed": [False] * len(t)}))
    return pl.concat(parts)


@pytest.fixture(scope="module")
def planted():
    frame = canonical(pl.concat([rows("a", 11), rows("b", 12), small_clients(4, 13)]))
    return frame, validate_bundle(bundle_from_requests(frame, Settings(), SOURCE))


def test_each_dominant_client_gets_its_own_planted_modulation_back(planted):
    """Per client, as the pooled estimator's own test states (tests/test_arrival_model.py): the
    dominant component within 0.15, the total variance within 20 %."""
    _, bundle = planted
    assert sorted(dominant_clients(bundle)) == ["a", "b"]
    own = bundle["arrival_model"]["modulation"]["clients"]
    assert sorted(own) == ["a", "b"]
    for cid, want in PLANTED.items():
        got, want = np.asarray(own[cid]["sigma2"]), np.asarray(want)
        top = int(np.argmax(want))
        assert got[top] == pytest.approx(want[top], abs=0.15), (cid, got)
        assert got.sum() == pytest.approx(want.sum(), rel=0.2), (cid, got)
    # the two are told apart: a's variance sits at 1 s, b's at 8 s
    assert own["a"]["sigma2"][0] > 0.5 and own["b"]["sigma2"][0] < 0.2
    assert bundle["arrival_model"]["chosen"] in ("cox", "cox-renewal")


def test_small_clients_share_the_pooled_modulation(planted):
    _, bundle = planted
    chosen = list(range(len(bundle["clients"])))
    groups = modulation_groups(bundle, chosen)
    ids = [sorted(bundle["clients"][chosen[r]]["id"] for r in rows) for rows, _, _ in groups]
    assert sorted(ids) == [["a"], ["b"], ["s0", "s1", "s2", "s3"]]
    streams = [stream for _, _, stream in groups]
    assert len(set(streams)) == 3  # each modulation its own random stream


def per_client_idc(frame: pl.DataFrame, cid: str, scale: float) -> float:
    return m.idc(frame.filter(pl.col("client_id") == cid)["arrival_s"].to_numpy(), scale)


def test_generation_gives_each_client_its_own_dispersion(planted):
    """Workloads generated from the bundle match each dominant client's IDC at 1 and 10 s within
    20 % (median of 3 seeds); one modulation shared by every client (the pooled model) misses
    client a's (its 1 s bursts are not b's)."""
    frame, bundle = planted
    model = bundle["arrival_model"]
    shared = {k: v for k, v in model["modulation"].items() if k != "clients"}
    pooled_bundle = {**bundle, "arrival_model": {**model, "modulation": {**shared, "sigma2": pooled_sigma2(frame, bundle)}}}
    for scale in (1.0, 10.0):
        errors = {cid: [] for cid in PLANTED}
        pooled = {cid: [] for cid in PLANTED}
        for seed in (1, 2, 3):
            made = pl.from_arrow(generate_table(bundle, GenerateOptions(seed=seed))[0])
            alike = pl.from_arrow(generate_table(pooled_bundle, GenerateOptions(seed=seed))[0])
            for cid in PLANTED:
                want = per_client_idc(frame, cid, scale)
                errors[cid].append(abs(per_client_idc(made, cid, scale) / want - 1))
                pooled[cid].append(abs(per_client_idc(alike, cid, scale) / want - 1))
        for cid in PLANTED:
            assert np.median(errors[cid]) <= 0.2, (scale, cid, errors[cid])
        assert np.median(pooled["a"]) > 0.2 or np.median(pooled["b"]) > 0.2, pooled


def pooled_sigma2(frame: pl.DataFrame, bundle: dict) -> list[float]:
    """The one modulation fitted to every client's counts together (the model before per-client fits)."""
    from servetrace.bundle.arrival_model import covered_counts
    from servetrace.bundle.modulation import fit_modulation
    from servetrace.settings import ModulationSettings

    bin_s = ModulationSettings().bin_s
    g0 = float(bundle["aggregate"]["window_start_s"][0])
    b = np.floor((frame["arrival_s"].to_numpy() - g0) / bin_s).astype(np.int64)
    idx, n = np.unique(b, return_counts=True)
    return fit_modulation(covered_counts(idx, n, bundle), bin_s, float(bundle["window_s"]))["sigma2"]


def test_findings_list_the_clients_modulations(planted):
    from servetrace.bundle.arrival_finding import arrival_model_finding

    _, bundle = planted
    found = arrival_model_finding(bundle["arrival_model"])["modulation"]["clients"]
    own = bundle["arrival_model"]["modulation"]["clients"]
    assert {k: v["sigma2"] for k, v in found.items()} == {k: v["sigma2"] for k, v in own.items()}


def test_the_set_based_fit_fits_the_same_client_modulations(planted, tmp_path):
    """The SQL fit (the Spark engine's form, sql/fit/fit_client_bins.sql) equals the streamed one."""
    from servetrace import io
    from test_fit_sql import assert_same, both

    frame, _ = planted
    io.write_parquet(tmp_path / "requests.parquet", frame.to_arrow(), {})
    stream, sets = both(tmp_path / "requests.parquet")
    assert sorted(stream["arrival_model"]["modulation"]["clients"]) == ["a", "b"]
    assert_same(stream["arrival_model"]["modulation"], sets["arrival_model"]["modulation"])
    assert stream["arrival_model"]["chosen"] == sets["arrival_model"]["chosen"]
