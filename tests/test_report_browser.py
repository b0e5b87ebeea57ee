"""The report opened in headless Chromium: every chart draws, nothing errs, nothing is fetched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servetrace.report import write_comparison, write_report
from servetrace.report.values import lookup
from report_browser import launch, skip_reason, visit
from report_helpers import findings_doc, write_trace_dir

pytestmark = [pytest.mark.browser, pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


def assert_opens_cleanly(seen, report: Path) -> None:
    assert seen.charts > 0
    assert seen.rendered == seen.charts, "a chart has neither svg nor canvas"
    assert seen.errors == []
    assert seen.requests == [report.resolve().as_uri()], "the page asked the network for something"
    assert "chart failed" not in seen.text


def assert_summary_matches(seen, findings: dict) -> None:
    assert seen.numbers, "no numbers in the summary"
    for n in seen.numbers:
        assert n["value"] == lookup(findings, n["key"]), n
    shown = {n["key"]: n["text"] for n in seen.numbers}
    assert shown.get("trace.rows_read") == f"{findings['trace']['rows_read']:,}"


def test_fixture_report_in_chromium(browser, tmp_path):
    out = write_trace_dir(tmp_path / "fixture")
    report = write_report(out)
    seen = visit(browser, report, "report_fixture.png")
    assert_opens_cleanly(seen, report)
    assert_summary_matches(seen, findings_doc())
    assert "</script><script>alert(1)</script>" in seen.text  # the hostile model name shows as text


def test_comparison_in_chromium(browser, tmp_path):
    a = write_trace_dir(tmp_path / "a")
    b = write_trace_dir(tmp_path / "b", findings_doc(source="bench.csv"))
    report = write_comparison(a, b, tmp_path / "cmp")
    seen = visit(browser, report, "report_compare.png")
    assert_opens_cleanly(seen, report)


def characterized(tmp_path: Path, trace: Path) -> Path:
    from servetrace.characterization import characterize

    out = tmp_path / trace.stem
    characterize(trace, out, quiet=True)
    if not (out / "report.html").exists():
        write_report(out)
    return out


REAL = [("burstgpt", "BurstGPT_3_head400.csv"), ("burstgpt", "BurstGPT_1_head400.csv"),
        ("azure2023", "AzureLLMInferenceTrace_conv.csv")]


@pytest.mark.slow
@pytest.mark.parametrize("folder, name", REAL)
def test_real_sample_reports_in_chromium(browser, tmp_path, folder, name):
    from conftest import shared_file

    pytest.importorskip("servetrace.characterization", reason="characterization stages not available")
    out = characterized(tmp_path, shared_file(folder, name))
    report = out / "report.html"
    seen = visit(browser, report, f"report_{Path(name).stem}.png")
    assert_opens_cleanly(seen, report)
    assert_summary_matches(seen, json.loads((out / "findings.json").read_text()))


def test_default_trace_report_in_chromium(browser, tmp_path):
    """The whole path on the default trace: characterize, generate from its bundle, validate and provision
    into the same DIR, rebuild the report; the fidelity and provisioning sections draw."""
    pytest.importorskip("servetrace.characterization", reason="characterization stages not available")
    from servetrace.generation.run import generate_file
    from servetrace.provision.run import provision_traces
    from servetrace.validation.run import validate_traces

    sample = Path(__file__).resolve().parents[1] / "data" / "samples" / "burstgpt_sample.csv"
    if not sample.exists():
        pytest.skip(f"{sample} is missing")
    out = characterized(tmp_path, sample)
    synthetic = out / "synthetic.parquet"
    generate_file(out, synthetic)
    fidelity = validate_traces(out, synthetic, out, page=False)
    provision_traces(out, out, synthetic=synthetic, page=False)
    report = write_report(out)
    seen = visit(browser, report, "report_default.png")
    assert_opens_cleanly(seen, report)
    assert_summary_matches(seen, json.loads((out / "findings.json").read_text()))
    assert {"fig-fidelity-fidelity-rate", "fig-provision-provision-curve"} <= set(seen.drawn)
    checks = fidelity["checks"]
    passed = sum(c["pass"] is True for c in checks.values())
    ran = sum(c["pass"] is not None for c in checks.values())
    assert f"{passed} of {ran} fidelity checks pass" in seen.text
    for name in checks:  # one row per check in the fidelity table
        assert f"\n{name}\t" in seen.text
    provision = json.loads((out / "provision.json").read_text())
    assert f"the source trace needs {provision['capacity']['source']} servers" in seen.text
    assert "servers" in seen.svg_text and "TTFT (s)" in seen.svg_text


def characterized_stages(tmp_path: Path, trace: Path) -> Path:
    """Ingest and every characterization stage, then the report: what characterize does before its bundle."""
    from servetrace.characterization import characterize_requests, write_outputs
    from servetrace.ingest import ingest_trace
    from servetrace.settings import IngestSettings, Settings

    out = tmp_path / trace.stem
    summary = ingest_trace(trace, out, IngestSettings())
    findings, tables = characterize_requests(out / "requests.parquet", Settings(), summary, scratch_dir=out)
    write_outputs(out, findings, tables)
    write_report(out)
    return out


@pytest.mark.slow
def test_reasoning_trace_report_in_chromium(browser, tmp_path):
    import subprocess
    import sys

    from conftest import SHARED

    pytest.importorskip("servetrace.characterization", reason="characterization stages not available")
    tool = SHARED / "tools" / "make_bench_trace.py"
    if not tool.exists():
        pytest.skip(f"{tool} is absent (../shared is not beside the repo)")
    trace = tmp_path / "r1.csv"
    # A DeepSeek-R1 workload from the ServeGen reasoning pool: reasoning tokens with two kinds of request.
    subprocess.run([sys.executable, str(tool), str(trace), "--rows", "30000", "--schema", "generic",
                    "--pool", "reason/deepseek-r1"], check=True, capture_output=True)
    out = characterized(tmp_path, trace)
    report = out / "report.html"
    seen = visit(browser, report, "report_reasoning.png")
    assert_opens_cleanly(seen, report)
    findings = json.loads((out / "findings.json").read_text())
    assert_summary_matches(seen, findings)
    assert {"fig-reasoning-mixture", "fig-reasoning-reason-ratio"} <= set(seen.drawn)
    weights = [m["weight"] for m in findings["reasoning"]["modes"]]
    from servetrace.report.values import fmt_percent

    assert all(f"weight {fmt_percent(w)}" in seen.svg_text for w in weights)  # the legend names each component


def multimodal_csv(path: Path, rows: int = 6000, seed: int = 0) -> Path:
    """Requests with 0-49 images (mostly one) at four image resolutions; `image_tokens` is the total."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    images = np.where(rng.random(rows) < 0.3, 0,
                      np.where(rng.random(rows) < 0.8, 1, np.minimum(2 + rng.geometric(0.25, rows), 49)))
    per_image = rng.choice([85, 258, 765, 1105], rows, p=[0.2, 0.5, 0.2, 0.1])
    pl.DataFrame({"timestamp": np.round(np.cumsum(rng.exponential(0.2, rows)), 3),
                  "client_id": rng.integers(0, 12, rows), "input_tokens": rng.integers(20, 2000, rows) + images * per_image,
                  "output_tokens": rng.integers(1, 800, rows), "image_count": images,
                  "image_tokens": images * per_image}).write_csv(path)
    return path


def test_multimodal_trace_report_in_chromium(browser, tmp_path):
    pytest.importorskip("servetrace.characterization", reason="characterization stages not available")
    out = characterized_stages(tmp_path, multimodal_csv(tmp_path / "mm.csv"))
    report = out / "report.html"
    seen = visit(browser, report, "report_multimodal.png")
    assert_opens_cleanly(seen, report)
    assert_summary_matches(seen, json.loads((out / "findings.json").read_text()))
    assert {"fig-multimodal-images", "fig-multimodal-image-tokens"} <= set(seen.drawn)
    assert "Not in this trace: no image" not in seen.text


def test_agent_trace_report_in_chromium(browser, tmp_path):
    from conftest import FIXTURES
    from servetrace.characterization import characterize

    characterize(FIXTURES / "agentic" / "cctraces", tmp_path / "cc", quiet=True)
    report = tmp_path / "cc" / "report.html"
    seen = visit(browser, report, "report_agents.png")
    assert_opens_cleanly(seen, report)
    assert {"fig-agents-agent-calls", "fig-agents-agent-gaps", "fig-agents-agent-context",
            "fig-agents-agent-outputs"} <= set(seen.drawn)
