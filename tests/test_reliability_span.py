"""One far-away timestamp must not take over the analysis, and no structure grows with the span
of a trace rather than with its rows: outlying arrivals are set aside at ingest (rejects, with
their line, and named in findings.quality), a span too long for its windows is refused up front,
and the IDC and the modulation fit hold the occupied bins only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conftest import run_cli
from servetrace.ingest.outliers import REASON


def _csv(path: Path, times, extra: dict[int, str] | None = None) -> Path:
    lines = ["arrival_s,input_tokens,output_tokens"] + [f"{t!r},{100 + i % 50},{20 + i % 7}" for i, t in enumerate(times)]
    for at, text in sorted((extra or {}).items()):
        lines.insert(at, text)
    path.write_text("\n".join(lines) + "\n")
    return path


def _hour(n=1000, seed=1):
    return np.sort(np.random.default_rng(seed).uniform(0, 3600, n)).round(3).tolist()


@pytest.mark.parametrize(("far", "offset"), [("1000000000", 0.0), ("1e15", 0.0), ("1", 5e6)])
def test_one_far_away_timestamp_is_set_aside_with_its_line(tmp_path, far, offset):
    path = _csv(tmp_path / "t.csv", [t + offset for t in _hour()], {500: f"{far},10,10"})
    proc = run_cli("ingest", path, "--out", tmp_path / "o", "--json")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert (s["rows_read"], s["rows_kept"], s["rows_rejected"]) == (1001, 1000, 1)
    assert s["reject_reasons"] == {REASON: 1}
    rejects = pl.read_parquet(tmp_path / "o" / "rejects.parquet")
    assert rejects.select("line", "reason", "record").rows() == [(501, REASON, f"{far},10,10")]
    kept = pl.read_parquet(tmp_path / "o" / "requests.parquet")["arrival_s"]
    assert kept.max() - kept.min() < 3600


def test_far_away_timestamp_is_named_in_quality_and_the_rate_is_the_traces(tmp_path):
    times = _hour()
    path = _csv(tmp_path / "t.csv", times, {1001: "1000000000,10,10"})
    proc = run_cli("characterize", path, "--out", tmp_path / "o", "--quiet")
    assert proc.returncode == 0, proc.stderr
    findings = json.loads((tmp_path / "o" / "findings.json").read_text())
    assert findings["quality"]["outlying_arrivals"] == 1
    assert "outlying timestamp" in findings["quality"]["statement"]
    span = times[-1] - times[0]
    assert findings["arrivals"]["rate_rps"] == pytest.approx(1000 / span, rel=0.01)
    assert (tmp_path / "o" / "bundle.json").stat().st_size < 2_000_000


def test_a_small_trace_keeps_a_request_a_day_after_the_rest(tmp_path):
    """Twenty requests at one instant and one a day later: too few rows to call a gap an outlier."""
    path = _csv(tmp_path / "t.csv", [0.0] * 20 + [86_400.001])
    proc = run_cli("ingest", path, "--out", tmp_path / "o", "--json")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert (s["rows_kept"], s["rows_rejected"]) == (21, 0)


def test_a_long_quiet_gap_is_not_an_outlier(tmp_path):
    """A month of traffic and one request a month later: a gap of the trace's own scale is data."""
    month = np.sort(np.random.default_rng(2).uniform(0, 30 * 86400, 1000)).round(3).tolist()
    path = _csv(tmp_path / "t.csv", month + [60 * 86400.0])
    proc = run_cli("ingest", path, "--out", tmp_path / "o", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows_rejected"] == 0


@pytest.mark.parametrize("command", ["characterize", "fit"])
def test_a_span_too_long_for_its_windows_is_refused_up_front(tmp_path, command):
    """Rows spread evenly over 30 years: nothing is outlying, and 1.6 M windows of 600 s would be
    allocated per structure; refused with the window that would fit."""
    path = _csv(tmp_path / "t.csv", np.linspace(2e9, 3e9, 2000).round(3).tolist())  # epoch seconds, 2033-2065
    assert run_cli("ingest", path, "--out", tmp_path / "o").returncode == 0
    if command == "characterize":
        proc = run_cli("characterize", path, "--out", tmp_path / "o")
    else:
        proc = run_cli("fit", tmp_path / "o")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "1,666,667 windows of 600 s" in proc.stderr, proc.stderr
    assert "--window 1000 or more" in proc.stderr
    assert not (tmp_path / "o" / "findings.json").exists() and not (tmp_path / "o" / "bundle.json").exists()


def test_idc_and_modulation_counts_hold_occupied_bins_not_the_span():
    from servetrace.bundle.arrival_model import covered_counts
    from servetrace.stats.fidelity import idc

    t = np.array([0.0, 5e11, 1e12])  # 1e12 one-second bins: a dense count array would be 8 TB
    n = 10**12
    assert idc(t, 1.0) == pytest.approx((3 / n - (3 / n) ** 2) / (3 / n), rel=1e-9)
    window = 600.0
    grid = np.arange(0, 1e9, window)  # 1.7 M windows, three of them busy
    bundle = {"window_s": window, "aggregate": {"window_start_s": grid}, "covered": {"start_s": 0.0, "end_s": 1e9}}
    bins = np.array([0, 4 * 600 * 10, 4 * 600 * 1000 + 7])
    counts = covered_counts(bins, np.array([2.0, 3.0, 4.0]), bundle)
    assert counts.size == 3 * 2400 and counts.sum() == 9.0 and counts[2 * 2400 + 7] == 4.0
