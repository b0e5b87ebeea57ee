"""The generator on bundles with planted parameters: rates, burstiness, copula, determinism."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from scipy import stats
from scipy.special import ndtri

from servetrace.bundle import save_bundle, validate_bundle
from servetrace.errors import ServetraceError
from servetrace.generation import GenerateOptions, generate_table
from servetrace.generation.run import generate_file
from servetrace.stats import fidelity as m

W = 600


def pmf(values, probs) -> dict:
    probs = np.asarray(probs, dtype=float)
    return {"values": [float(v) for v in values], "probs": (probs / probs.sum()).tolist()}


GEOM = pmf(np.arange(1, 3001), 0.999 ** np.arange(3000))  # a fine-grained length PMF, mean ~ 950


def client(cid, rate, windows, family="Gamma", cv=1.0, share=1.0, corr=0.0, copula="gaussian",
           fields=None, dataset_starts=(0,)):
    rate = np.broadcast_to(np.asarray(rate, dtype=float), (windows,))
    shape = 1 / cv**2 if family == "Gamma" else cv  # Weibull: `cv` is taken as the shape
    fields = fields or {"input_tokens": GEOM, "output_tokens": GEOM}
    names = list(fields)
    active = np.flatnonzero(rate > 0)
    return {
        "id": cid, "safe_id": cid.replace("|", "_"), "share": share, "requests": float(rate.sum() * W),
        "iat": {"family": family, "params": {"shape": shape, "scale": 1.0}, "cv": cv, "ks": None},
        "windows": {"start_s": [int(k * W) for k in active], "rate_rps": rate[active].tolist(),
                    "cv": [cv] * len(active), "family": [family] * len(active),
                    "shape": [shape] * len(active), "scale": [1.0] * len(active)},
        "lengths": {"window_start_s": list(dataset_starts),
                    "fields": {f: [p] * len(dataset_starts) if isinstance(p, dict) else list(p)
                               for f, p in fields.items()},
                    "fit": {}},
        "joint": {"fields": names[:2], "copula": copula, "corr": [[1.0, corr], [corr, 1.0]],
                  "spearman": {f"{names[0]}:{names[1]}": None}},
    }


def bundle(clients, windows, category="language") -> dict:
    rates = np.zeros(windows)
    for c in clients:
        idx = np.asarray(c["windows"]["start_s"], dtype=int) // W
        rates[idx] += c["windows"]["rate_rps"]
    return validate_bundle({
        "schema": "servetrace.bundle/v1", "created_at": "2026-01-01T00:00:00Z",
        "source": {"path": "planted", "sha256": None, "rows": None, "format": "planted"},
        "settings": {}, "window_s": W, "dataset_window_s": W, "span_s": windows * W,
        "group_by": "client_id", "category": category, "pmf_binning": {"exact_below": 4096, "log_step": 0},
        "aggregate": {"window_start_s": [k * W for k in range(windows)], "rate_rps": rates.tolist()},
        "clients": clients,
    })


def frame(b, **opts) -> pl.DataFrame:
    table, _ = generate_table(b, GenerateOptions(**opts))
    return pl.from_arrow(table)


def window_counts(t, windows):
    return np.bincount((t // W).astype(int), minlength=windows)[:windows]


def test_poisson_client_of_known_rate_gives_that_rate():
    df = frame(bundle([client("a", 5.0, 10)], 10))
    n = df.height
    assert abs(n - 30_000) < 4 * np.sqrt(30_000)
    t = df["arrival_s"].to_numpy()
    assert m.iat_cv(t) == pytest.approx(1.0, abs=0.02)
    assert m.idc(t, 10) == pytest.approx(1.0, abs=0.1)
    assert t.min() >= 0 and t.max() < 6000 and (np.diff(t) >= 0).all()


def test_gamma_client_with_cv_3_has_inter_arrival_cv_3_and_counts_vary_per_window():
    windows = 40
    t = frame(bundle([client("a", 20.0, windows, cv=3.0)], windows))["arrival_s"].to_numpy()
    assert m.iat_cv(t) == pytest.approx(3.0, rel=0.05)
    counts = window_counts(t, windows)
    # a renewal process's count over many gaps has variance ~ CV^2 x mean: no rescaling to 12,000
    assert counts.var() / counts.mean() == pytest.approx(9.0, rel=0.4)
    assert counts.mean() == pytest.approx(12_000, rel=0.03)


def test_weibull_windows_keep_their_shape():
    # Weibull shape 0.5 has CV sqrt(Gamma(5) / Gamma(3)^2 - 1) = sqrt(5)
    t = frame(bundle([client("a", 10.0, 30, family="Weibull", cv=0.5)], 30))["arrival_s"].to_numpy()
    assert m.iat_cv(t) == pytest.approx(np.sqrt(5), rel=0.06)


def test_low_rates_are_not_rounded_up_per_window():
    # 1.5 expected arrivals per window: ServeGen's ceil(rate x window) would give 2 each
    windows = 400
    t = frame(bundle([client("a", 1.5 / W, windows)], windows))["arrival_s"].to_numpy()
    assert abs(len(t) - 600) < 4 * np.sqrt(600)
    assert m.iat_cv(t) == pytest.approx(1.0, abs=0.12)


def test_the_process_carries_across_window_edges():
    # A very regular process (CV 0.1) with 1 arrival / s: a gap straddling an edge is still ~1 s,
    # while restarting at each edge would put arrivals right on the edge.
    windows = 20
    t = frame(bundle([client("a", 1.0, windows, cv=0.1)], windows))["arrival_s"].to_numpy()
    gaps = np.diff(t)
    assert gaps.min() > 0.5 and gaps.max() < 1.5
    after_edge = np.mod(t, W)[np.r_[True, np.diff(t // W) > 0]][1:]
    assert after_edge.mean() == pytest.approx(0.5, abs=0.2)  # not 0: the phase runs on


def test_an_idle_window_pauses_the_client():
    rate = np.array([2.0, 0.0, 0.0, 2.0])
    t = frame(bundle([client("a", rate, 4)], 4))["arrival_s"].to_numpy()
    counts = window_counts(t, 4)
    assert counts[1] == counts[2] == 0 and counts[0] > 1000 and counts[3] > 1000


def test_copula_correlation_of_0_6_is_recovered():
    df = frame(bundle([client("a", 30.0, 3, corr=0.6)], 3))
    x, y = df["input_tokens"].to_numpy(), df["output_tokens"].to_numpy()
    scores = [ndtri(stats.rankdata(v) / (len(v) + 1)) for v in (x, y)]
    assert np.corrcoef(*scores)[0, 1] == pytest.approx(0.6, abs=0.02)
    assert stats.spearmanr(x, y).statistic == pytest.approx(6 / np.pi * np.arcsin(0.3), abs=0.02)


def test_margins_follow_the_pmf():
    df = frame(bundle([client("a", 30.0, 3, corr=0.6)], 3))
    values, cdf = np.asarray(GEOM["values"]), np.cumsum(GEOM["probs"])
    x = np.sort(df["input_tokens"].to_numpy())
    ecdf = np.searchsorted(x, values, side="right") / len(x)
    assert np.abs(ecdf - cdf).max() < 0.02


def test_comonotonic_and_independent_copulas():
    co = frame(bundle([client("a", 10.0, 2, copula="comonotonic")], 2))
    assert stats.spearmanr(co["input_tokens"], co["output_tokens"]).statistic > 0.999
    ind = frame(bundle([client("a", 10.0, 2, copula="independent", corr=0.9)], 2))
    assert abs(stats.spearmanr(ind["input_tokens"], ind["output_tokens"]).statistic) < 0.03


def test_each_window_uses_its_latest_dataset_window():
    small, large = pmf([10], [1]), pmf([1000], [1])
    c = client("a", 2.0, 4, fields={"input_tokens": [small, large], "output_tokens": [small, large]},
               dataset_starts=(0, 2 * W))
    df = frame(bundle([c], 4))
    late = df["arrival_s"] >= 2 * W
    assert set(df.filter(~late)["input_tokens"]) == {10} and set(df.filter(late)["input_tokens"]) == {1000}


def test_reason_ratio_becomes_reason_tokens():
    fields = {"input_tokens": GEOM, "output_tokens": pmf([100, 200], [1, 1]), "reason_ratio": pmf([0.5], [1])}
    df = frame(bundle([client("a", 2.0, 2, fields=fields)], 2, category="reason"))
    assert (df["reason_tokens"] * 2 == df["output_tokens"]).all()


def two_clients():
    return bundle([client("big", 8.0, 6, share=0.8, cv=2.0), client("small", 2.0, 6, share=0.2)], 6)


def test_client_shares_and_selection():
    df = frame(two_clients())
    assert (df["client_id"] == "big").mean() == pytest.approx(0.8, abs=0.02)
    top = frame(two_clients(), clients="top:1")
    assert set(top["client_id"]) == {"big"}
    # a client's stream is its own: selecting it alone gives the same arrivals
    np.testing.assert_array_equal(top["arrival_s"], df.filter(pl.col("client_id") == "big")["arrival_s"])
    assert set(frame(two_clients(), clients="small")["client_id"]) == {"small"}
    with pytest.raises(ServetraceError, match="no client 'nope'"):
        frame(two_clients(), clients="nope")


def test_rate_options_scale_the_aggregate():
    base = frame(two_clients()).height
    assert frame(two_clients(), rate_scale=2.0).height == pytest.approx(2 * base, rel=0.05)
    df = frame(two_clients(), rate_rps=20.0)
    assert df.height / 3600 == pytest.approx(20.0, rel=0.05)
    assert (df["client_id"] == "big").mean() == pytest.approx(0.8, abs=0.02)
    fn = frame(two_clients(), rate_fn=((0.0, 5.0), (1800.0, 30.0)))
    counts = window_counts(fn["arrival_s"].to_numpy(), 6)
    assert counts[:3].sum() / 1800 == pytest.approx(5.0, rel=0.1)
    assert counts[3:].sum() / 1800 == pytest.approx(30.0, rel=0.1)
    with pytest.raises(ServetraceError, match="at most one"):
        GenerateOptions(rate_scale=2.0, rate_rps=3.0)


def test_duration_and_start_repeat_the_bundle():
    df = frame(two_clients(), start_s=1800.0, duration_s=7200.0)
    t = df["arrival_s"].to_numpy()
    assert t.min() >= 1800 and t.max() < 9000
    assert len(t) / 7200 == pytest.approx(10.0, rel=0.05)


def test_same_inputs_give_byte_identical_files(tmp_path):
    save_bundle(tmp_path / "bundle.json", two_clients())
    for name in ("a", "b"):
        generate_file(tmp_path / "bundle.json", tmp_path / f"{name}.parquet", GenerateOptions(seed=7))
    other = generate_file(tmp_path / "bundle.json", tmp_path / "c.parquet", GenerateOptions(seed=8))
    a, b = (tmp_path / "a.parquet").read_bytes(), (tmp_path / "b.parquet").read_bytes()
    assert a == b and a != (tmp_path / "c.parquet").read_bytes()
    assert other["requests"] == pq.read_metadata(tmp_path / "c.parquet").num_rows
    generate_file(tmp_path / "bundle.json", tmp_path / "a.csv", GenerateOptions(seed=7))
    generate_file(tmp_path / "bundle.json", tmp_path / "b.csv", GenerateOptions(seed=7))
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_output_is_canonical_and_validates_against_itself(tmp_path):
    from servetrace.schema import CANONICAL
    from servetrace.validation import validate_traces

    save_bundle(tmp_path / "bundle.json", two_clients())
    generate_file(tmp_path / "bundle.json", tmp_path / "syn.parquet")
    assert pq.read_schema(tmp_path / "syn.parquet").remove_metadata().equals(CANONICAL)
    result = validate_traces(tmp_path / "syn.parquet", tmp_path / "syn.parquet", tmp_path / "v", page=False)
    assert result["pass"] is True


def test_unknown_format_is_a_one_line_error(tmp_path):
    save_bundle(tmp_path / "bundle.json", two_clients())
    with pytest.raises(ServetraceError, match="extension"):
        generate_file(tmp_path / "bundle.json", tmp_path / "out.xyz")


def test_the_fitted_rank_correlation_drives_the_copula():
    c = client("a", 30.0, 3, corr=0.0)
    c["joint"]["spearman"] = {"input_tokens:output_tokens": 0.5}
    df = frame(bundle([c], 3))
    assert stats.spearmanr(df["input_tokens"], df["output_tokens"]).statistic == pytest.approx(0.5, abs=0.02)


def test_binned_pmf_values_are_spread_over_their_bin():
    fields = {"input_tokens": pmf([1000], [1]), "output_tokens": pmf([50], [1])}
    b = bundle([client("a", 10.0, 2, fields=fields, copula="comonotonic")], 2)
    b["pmf_binning"] = {"exact_below": 128, "log_step": 0.1}
    x = frame(b)["input_tokens"].to_numpy()
    # 1000 is in bin 21, [128 x 1.1^21, 128 x 1.1^22) = [947.2, 1041.9): integers 948..1041; spread
    # uniformly over the widest range centred on 1000 inside it, 959..1041
    assert x.min() == 959 and x.max() == 1041 and x.mean() == pytest.approx(1000, abs=2)
    assert set(frame(b)["output_tokens"]) == {50}  # below exact_below: exact


def test_a_model_service_grouping_goes_back_to_those_columns():
    b = bundle([client("GPT-4|api", 2.0, 2, share=0.5), client("ChatGPT|conversation", 2.0, 2, share=0.5)], 2)
    b["group_by"] = "model,service"
    df = frame(b)
    assert df["client_id"].null_count() == df.height
    assert set(zip(df["model"], df["service"])) == {("GPT-4", "api"), ("ChatGPT", "conversation")}


def test_edge_windows_of_a_partly_covered_source_keep_their_rate():
    """A source covering [350, 3250) of six 600 s windows (Azure's one-hour trace starts and stops
    mid-window): the bundle records the covered span, generation defaults to it, and every window,
    the two cut ones included, gets the source's rate per covered second."""
    from servetrace.bundle.fit import bundle_from_requests
    from servetrace.generation.table import canonical_table
    from servetrace.settings import Settings

    rng = np.random.default_rng(5)
    rate = np.repeat([4.7, 5.0, 5.6, 7.4, 6.0, 1.6], W)  # per second, Azure-like
    sec = np.arange(350, 3250)
    counts = rng.poisson(rate[sec])
    t = np.sort(np.repeat(sec, counts) + rng.random(counts.sum()))  # Poisson, piecewise-constant rate
    src = pl.from_arrow(canonical_table({"arrival_s": t, "client_id": ["a"] * t.size,
                                         "input_tokens": np.full(t.size, 9), "output_tokens": np.full(t.size, 3)}))
    b = validate_bundle(bundle_from_requests(src, Settings(), {"path": "p", "sha256": None, "rows": None,
                                                               "format": "planted"}))
    assert b["covered"] == {"start_s": t.min(), "end_s": t.max()}
    syn = frame(b, seed=3)["arrival_s"].to_numpy()
    assert syn.min() >= t.min() and syn.max() <= t.max()
    cover = np.minimum(np.arange(6) * W + W, t.max()) - np.maximum(np.arange(6) * W, t.min())
    src_rps = window_counts(t, 6) / cover
    syn_rps = window_counts(syn, 6) / cover
    assert src_rps[0] == pytest.approx(b["aggregate"]["rate_rps"][0])
    ape = np.abs(syn_rps - src_rps) / src_rps
    assert ape.mean() <= 0.05 and ape[[0, 5]].max() <= 0.15  # diluted, the first window was off by 58 %


def test_failures_are_drawn_at_the_fitted_rate_and_written_as_the_source_does():
    """A BurstGPT-like bundle: client a fails 2 % of the time overall but 30 % in window 2, b 10 %.
    Generated traces fail at those rates; a failure is a zero output when the source writes it so."""
    a, b = client("a", 20.0, 4, share=0.5), client("b", 20.0, 4, share=0.5)
    a["failure_rate"], b["failure_rate"] = 0.02, 0.10
    a["windows"]["failure_rate"] = [0.02, 0.02, 0.30, None]  # None: the client's rate
    bd = bundle([a, b], 4)
    bd["failures"] = {"rate": 0.06, "zero_output": True}
    df = frame(validate_bundle(bd)).with_columns((pl.col("arrival_s") // W).cast(pl.Int64).alias("w"))
    rate = df.group_by("client_id", "w").agg(pl.col("failed").mean()).sort("client_id", "w")
    got = dict(zip(zip(rate["client_id"], rate["w"]), rate["failed"]))
    for w, expected in enumerate([0.02, 0.02, 0.30, 0.02]):
        assert got[("a", w)] == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / 12_000) + 1e-3)
    assert df.filter(pl.col("client_id") == "b")["failed"].mean() == pytest.approx(0.10, abs=0.01)
    assert (df.filter(pl.col("failed"))["output_tokens"] == 0).all()
    assert (df.filter(~pl.col("failed"))["output_tokens"] > 0).all()
    # the same requests, lengths untouched, when the source keeps a failed request's output
    bd["failures"]["zero_output"] = False
    kept = frame(bd)
    np.testing.assert_array_equal(kept["failed"], df["failed"])
    assert (kept["output_tokens"] > 0).all()
    # a bundle without failure information (an import, an older bundle): nothing fails
    assert not frame(bundle([client("a", 5.0, 2)], 2))["failed"].any()


def test_sparse_windows_are_not_clumped_by_the_whole_span_burstiness():
    """BurstGPT_1's head: windows with one or two arrivals have no fitted family, and the whole-span
    fit (CV 4.2, from the rate changing between windows) made their few arrivals clump (trace CV
    5.9 against the source's 4.5). Such windows take the client's typical fitted window process
    (here none was fitted: Poisson), so a steady sparse client has inter-arrival CV about 1."""
    c = client("a", 2 / W, 300)  # two arrivals per window
    c["windows"].update(family=[None] * 300, shape=[None] * 300, scale=[None] * 300, cv=[None] * 300)
    c["iat"] = {"family": "Weibull", "params": {"shape": 0.3, "scale": 10.0}, "cv": 4.2, "ks": None}
    t = frame(bundle([c], 300))["arrival_s"].to_numpy()
    assert len(t) == pytest.approx(600, rel=0.15)
    assert m.iat_cv(t) == pytest.approx(1.0, abs=0.15)
    # with fitted windows, the sparse ones take their median shape (Gamma CV 2 here)
    c2 = client("a", 2 / W, 300, cv=2.0)
    for key in ("family", "shape", "cv"):
        c2["windows"][key] = [None if k % 2 else v for k, v in enumerate(c2["windows"][key])]
    c2["iat"] = c["iat"]
    t2 = frame(bundle([c2], 300), seed=4)["arrival_s"].to_numpy()
    assert m.iat_cv(t2) == pytest.approx(2.0, rel=0.25)
