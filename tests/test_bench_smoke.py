"""`make bench` at 100 k rows: the harness runs and writes well-formed results; its arithmetic
(ratios, scaling exponents, targets), process measurement and pandas baseline checked on known values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the bench package lives at the repository root, beside pipeline/
    sys.path.insert(0, str(REPO))

from bench import results  # noqa: E402
from bench.measure import run_measured  # noqa: E402
from bench.pandas_baseline import core_statistics  # noqa: E402


def _row(name, trace, rows, median_s, schema="burstgpt", peak=100.0, **extra):
    return {"name": name, "trace": trace, "rows": rows, "status": "ok", "median_s": median_s,
            "cpu_s": 2 * median_s, "peak_rss_mb": peak, "schema": schema, **extra}


def test_smoke_100k_writes_well_formed_results(tmp_path):
    cmd = [sys.executable, "-m", "bench.run", "--rows", "100000", "--repeat", "1", "--trace-source", "own",
           "--schemas", "burstgpt", "--only", "proxy,ingest,characterize,pandas", "--no-generate", "--reuse-blocks", "100000",
           "--data-dir", str(tmp_path / "data"), "--results-dir", str(tmp_path / "out")]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["schema"] == "servetrace.bench/v1"
    assert doc["traces"][0]["rows"] == 100_000 and doc["traces"][0]["source"] == "own"
    assert len(doc["load"]["start"]) == 3 and doc["machine"]["cpus"] >= 1
    by_name = {m["name"]: m for m in doc["measurements"]}
    assert {"duckdb proxy", "servetrace ingest", "servetrace characterize", "pandas baseline", "generate"} <= set(by_name)
    for m in doc["measurements"]:
        assert m["status"] in ("ok", "skipped", "failed")
        assert (m["status"] == "ok") == (m["median_s"] is not None), m
        if m["status"] != "ok":
            assert m["reason"], m
    proxy = by_name["duckdb proxy"]
    assert proxy["status"] == "ok" and proxy["x_proxy"] == 1.0 and proxy["peak_rss_mb"] > 10
    assert proxy["rows_per_s"] == pytest.approx(100_000 / proxy["median_s"], rel=1e-3)
    assert by_name["pandas baseline"]["statistics"]["rows"] == 100_000
    lru = by_name["lru curve"]
    assert lru["status"] == "ok" and lru["method"] == "exact" and 90_000 <= lru["blocks"] <= 100_000
    assert 0 < lru["infinite_hit_rate"] < 1
    target = next(t for t in doc["targets"] if t["id"] == "lru_curve_10m")
    assert target["met"] is None and target["value"] == lru["median_s"]  # 10 M blocks not measured here
    for t in doc["targets"]:
        assert set(t) >= {"id", "target", "value", "met", "where"} and t["met"] in (True, False, None)
    md = (tmp_path / "out" / "RESULTS.md").read_text()
    assert "## Targets" in md and "## Every figure" in md and "duckdb proxy" in md
    parts = by_name["servetrace characterize"]["timings_s"]
    assert set(parts) == {"ingest", "stages", "bundle", "report"} and all(v > 0 for v in parts.values())
    assert sum(parts.values()) < by_name["servetrace characterize"]["median_s"]  # start-up is outside
    assert "## characterize by part" in md
    # a merged run that measures no trace keeps the sizes its targets are judged at (and another merge works)
    merge = [sys.executable, "-m", "bench.run", "--rows", "", "--no-small", "--no-generate", "--reuse-blocks", "0",
             "--merge", "--data-dir", str(tmp_path / "data"), "--results-dir", str(tmp_path / "out")]
    for _ in range(2):
        done = subprocess.run(merge, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        merged = json.loads((tmp_path / "out" / "results.json").read_text())
        assert merged["sizes"] == [100_000] and "duckdb proxy" in {m["name"] for m in merged["measurements"]}
    # the trace is cached by name: a second run would reuse it
    assert (tmp_path / "data" / "own_burstgpt_100k.csv").exists()
    # the small real trace, side by side with the bare one-liner, and its target row
    from bench.small_trace import BARE, CHARACTERIZE

    assert by_name[BARE]["status"] == "ok" and by_name[CHARACTERIZE]["status"] == "ok"
    small = next(t for t in doc["targets"] if t["id"] == "small_vs_bare")
    assert small["value"] == round(by_name[CHARACTERIZE]["median_s"] / by_name[BARE]["median_s"], 2)


def test_ratios_scaling_and_targets_from_known_figures():
    rows = []
    for n, scale in ((1_000_000, 1.0), (10_310_000, 10.31)):
        trace = f"burstgpt_{n}"
        rows += [_row("duckdb proxy", trace, n, 2.0 * scale), _row("servetrace ingest", trace, n, 2.5 * scale),
                 _row("servetrace characterize", trace, n, 8.0 * scale, peak=1500.0),
                 _row("characterize, ingest reused", trace, n, 7.5 * scale,
                      timings_s={"ingest": 0.1, "stages": 5.5 * scale, "bundle": 1.0, "report": 0.5}),
                 _row("pandas baseline", trace, n, 40.0 * scale)]
    rows += [_row("generate 1 h", None, 2_000_000, 1.0, schema=None, requests_per_s_inner=1.5e6),
             _row("bundle load", None, None, 0.4, schema=None, clients=147, span_s=14 * 86400)]
    ratios = results.with_ratios(rows)
    ingest = next(r for r in ratios if r["name"] == "servetrace ingest" and r["rows"] == 1_000_000)
    assert ingest["x_proxy"] == 1.25 and ingest["x_pandas"] == round(2.5 / 40.0, 2) and ingest["x_proxy_cpu"] == 1.25
    scale = results.scaling(ratios)
    char = next(s for s in scale if s["name"] == "servetrace characterize")
    assert char["exponents"] == [1.0]  # time exactly proportional to rows
    got = {t["id"]: t for t in results.targets(ratios, scale, [1_000_000, 10_310_000], {"requests_per_s": 45_000.0})}
    assert got["ingest_vs_proxy[burstgpt]"]["value"] == 1.25 and got["ingest_vs_proxy[burstgpt]"]["met"]
    assert got["ingest_vs_proxy[burstgpt]"]["note"] == "on CPU seconds: 1.25"
    assert got["characterize_vs_proxy[burstgpt]"]["value"] == 4.0 and got["characterize_vs_proxy[burstgpt]"]["met"] is False
    assert got["stages_vs_ingest[burstgpt]"]["value"] == 2.2 and got["stages_vs_ingest[burstgpt]"]["met"] is False
    assert "the whole reused run (start-up, bundle, report) 3.0x" in got["stages_vs_ingest[burstgpt]"]["note"]
    assert got["characterize_vs_pandas[burstgpt]"]["value"] == 5.0 and got["characterize_vs_pandas[burstgpt]"]["met"]
    assert got["peak_rss_10m"]["value"] == 1500.0 and got["peak_rss_10m"]["met"]
    assert "peak_rss_100m" not in got
    assert got["generate_rps"]["met"] and got["generate_vs_servegen"]["value"] == round(1.5e6 / 45_000, 1)
    assert got["bundle_load"]["met"] and got["bundle_load"]["where"].startswith("147-client, 14-day")
    assert "small_vs_bare" not in got  # not measured: no target row


def test_small_trace_target_is_characterize_over_the_bare_one_liner():
    from bench.small_trace import BARE, CHARACTERIZE

    rows = [_row(BARE, "azure", 19_365, 0.5, schema=None), _row(CHARACTERIZE, "azure", 19_365, 1.75, schema=None)]
    got = {t["id"]: t for t in results.targets(results.with_ratios(rows), [], [1_000_000], {"requests_per_s": 1.0})}
    assert got["small_vs_bare"]["value"] == 3.5 and got["small_vs_bare"]["met"] is True
    assert got["small_vs_bare"]["where"] == "azure, 19,365 rows" and "on CPU seconds: 3.5" in got["small_vs_bare"]["note"]
    rows[1]["median_s"] = 2.5
    got = {t["id"]: t for t in results.targets(results.with_ratios(rows), [], [1_000_000], {"requests_per_s": 1.0})}
    assert got["small_vs_bare"]["value"] == 5.0 and got["small_vs_bare"]["met"] is False


def test_each_small_trace_is_paired_with_its_own_bare_run():
    from bench.small_trace import BARE, CHARACTERIZE

    rows = [_row(BARE, "azure", 19_365, 0.5, schema=None), _row(CHARACTERIZE, "azure", 19_365, 1.75, schema=None),
            _row(BARE, "sample", 40_087, 0.6, schema=None), _row(CHARACTERIZE, "sample", 40_087, 6.0, schema=None)]
    got = {t["id"]: t for t in results.targets(results.with_ratios(rows), [], [1_000_000], {"requests_per_s": 1.0})}
    assert got["small_vs_bare"]["value"] == 3.5 and got["small_vs_bare"]["where"] == "azure, 19,365 rows"
    assert got["small_vs_bare[sample]"]["value"] == 10.0 and got["small_vs_bare[sample]"]["met"] is False
    assert got["small_vs_bare[sample]"]["where"] == "sample, 40,087 rows"


def test_run_measured_sees_a_child_process_memory_and_time():
    code = ("import subprocess, sys; subprocess.run([sys.executable, '-c', "
            "'import time; b = bytearray(300 * 2**20); b[::4096] = b\"x\" * len(b[::4096]); time.sleep(0.5)'])")
    run = run_measured([sys.executable, "-c", code])
    assert run.ok and run.wall_s >= 0.5
    assert run.peak_rss >= 300 * 2**20  # the grandchild's 300 MB counts for the tree


def test_run_measured_counts_the_cpu_of_a_child_nobody_waits_for():
    """Spark's JVM outlives the command that started it, which never waits for it: its CPU is not
    in the command's own rusage, so the polled CPU of such descendants is added (a child burning
    ~1 s of CPU, still running when its parent exits)."""
    burn = "import time; t = time.process_time(); exec('while time.process_time() - t < 1.0: pass'); time.sleep(3)"
    ticks = "sum(int(x) for x in open(f'/proc/{p.pid}/stat').read().rsplit(')', 1)[1].split()[11:13])"
    code = ("import os, subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', %r]); "
            "hz = os.sysconf('SC_CLK_TCK'); [time.sleep(0.05) for _ in iter(lambda: %s >= 0.95 * hz, True)]; "
            "time.sleep(0.2); os._exit(0)" % (burn, ticks))
    run = run_measured([sys.executable, "-c", code])
    assert run.ok and run.cpu_s >= 0.9


def test_run_measured_reports_a_failing_command():
    run = run_measured([sys.executable, "-c", "import sys; sys.exit('bad trace')"])
    assert not run.ok and run.error_line() == "bad trace"


def test_pandas_baseline_statistics_match_numpy_and_scipy():
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.gamma(0.5, 2.0, 5000))
    df = pd.DataFrame({"timestamp": t, "client_id": 1, "model": "m",
                       "input_tokens": rng.integers(1, 4000, 5000), "output_tokens": rng.integers(0, 900, 5000)})
    got = core_statistics(df.sample(frac=1.0, random_state=0), window_s=600)  # unsorted input is sorted
    gaps = np.diff(t)
    assert got["iat_cv"] == pytest.approx(gaps.std() / gaps.mean(), rel=1e-9)
    counts = np.bincount(((t - t[0]) // 600).astype(int))
    assert got["windows"] == counts.size and got["window_rate_max"] == pytest.approx(counts.max() / 600)
    assert got["lengths"]["input"]["p90"] == pytest.approx(np.quantile(df["input_tokens"], 0.9))
    assert got["correlation"]["spearman"] == pytest.approx(
        stats.spearmanr(df["input_tokens"], df["output_tokens"]).statistic, abs=1e-12)
    assert got["gamma_fit"]["shape"] == pytest.approx(0.5, rel=0.06)  # the planted shape


def test_sized_generation_targets_are_rate_and_peak_rss_per_size():
    rows = [_row("generate 10 M requests", None, 10_000_000, 4.0, schema=None, peak=700.0, requested=10_000_000,
                 requests_per_s_inner=2.5e6, requests_per_s_process=2.4e6, arrival_model="cox-renewal"),
            _row("generate 100 M requests", None, 100_000_000, 80.0, schema=None, peak=1100.0, requested=100_000_000,
                 requests_per_s_inner=1.25e6, requests_per_s_process=1.2e6, arrival_model="cox-renewal")]
    got = {t["id"]: t for t in results.targets(results.with_ratios(rows), [], [], {"requests_per_s": 1.0})}
    assert got["generate_rps_10m"]["value"] == 2.5e6 and got["generate_rps_10m"]["met"] is True
    assert got["generate_rss_10m"]["value"] == 700.0 and got["generate_rss_10m"]["met"] is True
    assert got["generate_rps_100m"]["met"] is False and got["generate_rss_100m"]["met"] is False
    assert "cox-renewal arrivals" in got["generate_rps_100m"]["note"]
    assert got["generate_rps"]["value"] is None  # the pool's duration figures are separate: not measured here


def test_sized_rate_is_per_cpu_second_and_merge_keeps_what_was_not_measured_now():
    from bench import markdown

    sized = _row("generate 1000 M requests", None, 1_000_000_000, 900.0, schema=None, peak=600.0,
                 requested=1_000_000_000, requests_per_s_cpu=2.2e6, requests_per_s_inner=1.1e6,
                 requests_per_s_process=1.0e6, arrival_model="cox", load_1min=[9.5, 11.0], nice=5)
    got = {t["id"]: t for t in results.targets(results.with_ratios([sized]), [], [], {"requests_per_s": 1.0})}
    assert got["generate_rps_1000m"]["value"] == 2.2e6 and got["generate_rps_1000m"]["met"] is True  # not the wall rate
    assert "per wall second: generate + write 1100000.0/s" in got["generate_rps_1000m"]["note"]
    assert "at load 9.5-11.0" in got["generate_rps_1000m"]["note"]
    old = {"command": "python -m bench.run", "created_at": "then", "sizes": [1_000_000],
           "traces": [{"name": "burstgpt_1m"}],
           "measurements": [_row("duckdb proxy", "burstgpt_1m", 1_000_000, 2.0),
                            _row("lru curve", None, 10, 3.0, schema=None),
                            dict(sized, median_s=1800.0)]}
    now = [sized, {"name": "lru curve", "trace": None, "status": "skipped", "reason": "--reuse-blocks 0 given"}]
    figures, traces, sizes, info = results.merged(old, now, [], [])
    by = {m["name"]: m for m in figures}
    assert len(figures) == 3 and by["generate 1000 M requests"]["median_s"] == 900.0  # replaced
    assert by["lru curve"]["median_s"] == 3.0 and by["duckdb proxy"]["median_s"] == 2.0  # kept (skipped now)
    assert traces == [{"name": "burstgpt_1m"}] and sizes == [1_000_000]
    assert info["kept"] == 2 and info["measured_now"] == ["generate 1000 M requests"]
    doc = {"measurements": figures}
    text = "\n".join(markdown.sized_section(doc))
    assert "| 1,000,000,000 | 1,000,000,000 | 1,800 | – | 2,200,000 | 900 | 1,100,000 | 600 | – | 9.5 -> 11 | 5 |" in text
    inner = dict(sized, requests_per_s_cpu_inner=2.6e6)  # generation + write alone: the target reads it first
    got = {t["id"]: t for t in results.targets(results.with_ratios([inner]), [], [], {"requests_per_s": 1.0})}
    assert got["generate_rps_1000m"]["value"] == 2.6e6 and "(whole process 2200000.0/s)" in got["generate_rps_1000m"]["note"]


def test_arrival_targets_table_is_the_validate_numbers(tmp_path):
    """`python -m bench.arrival_targets TRACE --seeds 1`: the row's values are validate's own."""
    trace = REPO.parent / "shared" / "data" / "burstgpt" / "BurstGPT_1_head400.csv"
    done = subprocess.run([sys.executable, "-m", "bench.arrival_targets", str(trace), "--seeds", "1",
                           "--work", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    row = json.loads((tmp_path / "rows.json").read_text())[0]
    f = json.loads((tmp_path / "BurstGPT_1_head400.1.val" / "fidelity.json").read_text())
    assert row["rows"] == 400 and f["rows"]["source"] == 400
    assert row["count"] == abs(f["rows"]["synthetic"] - 400) / 400
    for k in ("iat_cv", "idc_1", "idc_10", "rate_mape"):
        assert row[k]["value"] == f["checks"][k]["value"]
        floor = f["checks"][k]["noise_floor"]
        assert floor["seed_to_seed"] is not None and row[k]["seed"] == floor["seed_to_seed"]
    assert f"| BurstGPT_1_head400.csv | 400 | {row['model']} |" in done.stdout


def test_arrival_targets_count_cell_reads_its_seed_floor():
    from bench.arrival_targets import _count

    assert _count({"count": 0.03, "count_seed": 0.01}) == "3.0 ✓ (1.0)"
    assert _count({"count": 0.062, "count_seed": 0.081}) == "6.2 ~ (8.1)"  # missed, within seed-to-seed noise
    assert _count({"count": 0.09, "count_seed": 0.02}) == "9.0 ✗ (2.0)"
    assert _count({"count": 0.09, "count_seed": None}) == "9.0 ✗"
