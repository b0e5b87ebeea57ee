"""Optional areas: reasoning mixture, sessions, multimodal composition, prefix reuse."""

import numpy as np
import pyarrow as pa
import pytest

from servetrace.stats.modes import bimodality, gaussian_mixture_2, histogram_peaks
from test_stages_support import canonical, run_stages


def test_bimodal_reasoning_is_detected(tmp_path):
    rng = np.random.default_rng(3)
    n = 8000
    short = rng.random(n) < 0.3
    reason = np.where(short, rng.lognormal(np.log(200), 0.3, n), rng.lognormal(np.log(3000), 0.3, n)).round()
    out = (reason / 0.8).round()
    table = canonical(np.cumsum(rng.exponential(1, n)), input_tokens=np.full(n, 100), output_tokens=out,
                      reason_tokens=reason)
    findings, tables = run_stages(tmp_path, table)
    r = findings["reasoning"]
    assert r["bimodal"] is True
    assert r["modes"][0]["weight"] == pytest.approx(0.3, abs=0.02)
    assert r["modes"][0]["median_tokens"] == pytest.approx(200, rel=0.05)
    assert r["modes"][1]["median_tokens"] == pytest.approx(3000, rel=0.05)
    assert r["reason_ratio_mean"] == pytest.approx(0.8, abs=0.01)
    assert tables["reason_ratio"]["share"].sum() == pytest.approx(1.0)


def test_unimodal_reasoning_is_not_called_bimodal():
    y = np.random.default_rng(1).normal(5, 1, 5000)
    assert bimodality(y, gaussian_mixture_2(y))["bimodal"] is False


def _reason_trace(rng, n, ratio):
    """Output lengths lognormal around 2000 tokens, reasoning = round(ratio x output)."""
    out = np.maximum(1, rng.lognormal(np.log(2000), 0.5, n).round())
    return canonical(np.cumsum(rng.exponential(1, n)), input_tokens=np.full(n, 100), output_tokens=out,
                     reason_tokens=np.minimum(out, (ratio * out).round()))


def test_reason_ratio_modes_of_a_known_mixture(tmp_path):
    """Ratio a 40/60 mixture of Beta(20, 35) (mode 0.36) and Beta(40, 10.75) (mode 0.80), as in
    DeepSeek-R1: the two peaks are found within one 0.02 bin of the modes (neighbouring bins of
    one mode are not two peaks) and the ratio is called bimodal."""
    rng = np.random.default_rng(5)
    n = 20_000
    ratio = np.where(rng.random(n) < 0.4, rng.beta(20, 35, n), rng.beta(40, 10.75, n))
    findings, _ = run_stages(tmp_path, _reason_trace(rng, n, ratio))
    r = findings["reasoning"]
    peaks = sorted(r["reason_ratio_peaks"])
    assert len(peaks) == 2
    assert peaks[0] == pytest.approx(19 / 53, abs=0.03) and peaks[1] == pytest.approx(39 / 48.75, abs=0.03)
    rb = r["reason_ratio_bimodality"]
    assert rb["bimodal"] is True
    assert rb["weights"][0] == pytest.approx(0.4, abs=0.03)
    assert "the reason ratio is bimodal, peaks near 0.3" in r["statement"]


def test_unimodal_reason_ratio_has_one_peak(tmp_path):
    rng = np.random.default_rng(6)
    n = 20_000
    findings, _ = run_stages(tmp_path, _reason_trace(rng, n, rng.beta(30, 20, n)))  # mode 29 / 48 = 0.60
    r = findings["reasoning"]
    assert r["reason_ratio_peaks"] == [pytest.approx(29 / 48, abs=0.03)]
    assert r["reason_ratio_bimodality"]["bimodal"] is False


def test_histogram_peaks_need_prominence():
    centers = np.arange(10) + 0.5
    share = np.array([0, 1, 5, 9, 8.9, 9.2, 3, 1, 4, 0.5])  # 9 / 8.9 / 9.2: one mode; 4 at 8.5: a second
    assert [p["at"] for p in histogram_peaks(share, centers)] == [5.5, 8.5]
    assert [p["at"] for p in histogram_peaks(np.array([7.0, 1, 0, 0]), centers[:4])] == [0.5]  # an edge bin


def test_sessions_turns_and_gaps(tmp_path):
    # 100 sessions of 3 turns 60 s apart, starting every 1000 s.
    t = np.concatenate([np.arange(100) * 1000.0 + k * 60 for k in range(3)])
    sess = [f"s{i}" for i in range(100)] * 3
    findings, tables = run_stages(tmp_path, canonical(t, session_id=sess, input_tokens=np.ones(300), output_tokens=np.ones(300)))
    s = findings["sessions"]
    assert s["sessions"] == 100 and s["turns_mean"] == 3 and s["gap_p50_s"] == pytest.approx(60)
    assert tables["sessions"]["turns"].to_list() == [3]


def test_multimodal_images(tmp_path):
    counts = np.array([1] * 80 + [2] * 15 + [0] * 5)
    findings, _ = run_stages(tmp_path, canonical(np.arange(100.0), image_count=counts, image_tokens=counts * 256,
                                                 input_tokens=np.ones(100), output_tokens=np.ones(100)))
    m = findings["multimodal"]
    assert m["share_with_images"] == pytest.approx(0.95)
    assert m["one_image_share"] == pytest.approx(80 / 95)
    assert m["tokens_per_image_top"][0] == {"tokens": 256, "share": 1.0}


def test_prefix_reuse(tmp_path):
    table = canonical([0.0, 1.0, 2.0], input_tokens=[3, 3, 3], output_tokens=[1, 1, 1])
    table = table.append_column("hash_ids", pa.array([[1, 2, 3], [1, 2, 9], [7, 2, 3]], pa.list_(pa.int64())))
    findings, _ = run_stages(tmp_path, table)
    p = findings["prefix"]
    assert p["blocks"] == 9
    assert p["seen_share"] == pytest.approx(4 / 9)  # 1, 2 in row 2; 2, 3 in row 3
    assert p["ideal_hit_rate"] == pytest.approx(2 / 9)  # leading runs: 2 blocks of row 2, none of row 3
