"""The report's structure: sections, figures, notes for what is missing, escaping, summary numbers."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from servetrace.errors import ServetraceError
from servetrace.report import write_comparison, write_report
from servetrace.report.assets import script_json
from servetrace.report.inputs import load_inputs
from servetrace.report.summary import key_findings
from servetrace.report.values import fmt_number, lookup
from report_helpers import EVIL, findings_doc, tables, write_trace_dir


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory) -> Path:
    out = write_trace_dir(tmp_path_factory.mktemp("trace") / "burst")
    write_report(out)
    return out


@pytest.fixture(scope="module")
def page(trace_dir) -> str:
    return (trace_dir / "report.html").read_text(encoding="utf-8")


def specs(html: str) -> dict:
    raw = re.search(r'<script type="application/json" id="servetrace-specs">(.*?)</script>', html, re.S).group(1)
    return json.loads(raw)


def test_every_area_has_a_section_in_reading_order(page):
    ids = re.findall(r'<section id="([^"]+)"', page)
    assert ids == ["quality", "arrivals", "rate", "clients", "lengths", "failures", "sessions", "reasoning",
                   "multimodal", "prefix", "cite"]


def test_each_drawn_figure_has_one_spec_and_one_container(page):
    drawn = re.findall(r'<div class="chart" data-figure="([^"]+)">', page)
    assert sorted(drawn) == sorted(specs(page))
    assert {"fig-arrivals-idc", "fig-clients-lorenz", "fig-lengths-length-cdf", "fig-lengths-length-joint",
            "fig-rate-diurnal", "fig-failures-failures-time", "fig-sessions-turns"} <= set(drawn)


def test_every_figure_spec_is_valid_vega_lite(page):
    """The page builds specs without altair's validation; this is where they are checked."""
    from altair.utils.schemapi import validate_jsonschema
    from altair.vegalite.v6.schema.core import load_schema

    schema = load_schema()
    drawn = specs(page)
    assert len(drawn) > 10
    for key, spec in drawn.items():
        assert validate_jsonschema(spec, schema, raise_error=False) is None, key
    broken = dict(next(iter(drawn.values())), mark={"type": "no-such-mark"})
    assert validate_jsonschema(broken, schema, raise_error=False) is not None


def test_missing_table_or_area_is_a_note_not_a_crash(page):
    assert "not in this trace: no iat_hist table" in page  # table the fixture does not write
    assert "Not in this trace: no reason_tokens column" in page  # area absent in findings.json
    assert 'id="fig-reasoning' not in page


def test_trace_strings_are_escaped_everywhere(page):
    assert EVIL not in page
    assert "<script>alert(1)" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text in the HTML
    assert "burst&lt;y&gt;.csv" in page
    # Inside the embedded chart data the model name survives as data, with `<` escaped.
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in page
    assert any(EVIL in json.dumps(s) for s in specs(page).values())


def test_script_json_cannot_close_its_element():
    text = script_json({"m": EVIL, "x": "a & b <!-- c"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"m": EVIL, "x": "a & b <!-- c"}


def test_page_is_self_contained(page):
    assert "vegaEmbed" in page and page.count("window.vegaEmbed=") == 1  # one copy of the libraries
    assert not re.search(r'<script[^>]+src=|<link[^>]+href=|<img[^>]+src="http', page)
    assert "default-src 'none'" in page


def test_summary_numbers_come_from_findings(trace_dir, page):
    findings = json.loads((trace_dir / "findings.json").read_text())
    numbers = re.findall(r'<span class="num" data-key="([^"]+)" data-value="([^"]+)">([^<]+)</span>', page)
    keys = {k for k, _, _ in numbers}
    assert {"arrivals.rate_rps", "arrivals.iat_cv", "clients.gini", "lengths.input.mean", "failures.rate",
            "trace.rows_read", "trace.rows_rejected"} <= keys
    for key, value, _ in numbers:
        assert json.loads(html.unescape(value)) == lookup(findings, key), key
    shown = {k: t for k, _, t in numbers}
    assert shown["arrivals.iat_cv"] == "2.35" and shown["failures.rate"] == "1.83 %"
    assert shown["trace.rows_read"] == "10,250"


def test_key_findings_are_five_to_eight_and_link_to_sections(page):
    findings = findings_doc()
    found = key_findings(findings)
    assert 5 <= len(found) <= 8
    abstract = re.search(r'<div class="abstract" id="summary">(.*?)</div>', page, re.S).group(1)
    links = re.findall(r'<li><a href="#([a-z]+)">', abstract)
    assert len(links) == len(found)
    sections = set(re.findall(r'<section id="([^"]+)"', page))
    assert set(links) <= sections


def test_citeable_section_records_settings_versions_and_sha(page):
    cite = page[page.index('<section id="cite">'):]
    assert "ab" * 32 in cite and "window_s" in cite and "vega-lite (report)" in cite and "duckdb" in cite


def test_nested_settings_are_tabled_branch_by_branch(tmp_path):
    """The recorded settings tree (run values, then stages, fit, ingest and their nested branches)
    reads as one table per branch holding its own values, lists comma-separated, null as none."""
    from servetrace.settings import DEFAULTS, record, tree

    doc = findings_doc()
    doc["settings"] = record(DEFAULTS, "model,service", {"format": "auto", "mapping": {}, "time_unit": "auto",
                                                        "outliers": tree()["ingest"]["outliers"]})
    out = write_trace_dir(tmp_path / "nested", findings=doc)
    write_report(out)
    cite = (out / "report.html").read_text(encoding="utf-8")
    cite = cite[cite.index('<section id="cite">'):]
    found = {}
    for caption, body in re.findall(r"<table><caption>(Settings: [^<]+)</caption>.*?<tbody>(.*?)</tbody>", cite, re.S):
        found[caption] = {html.unescape(k): html.unescape(v) for k, v in
                          re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", body)}
    known = ["Settings: run", "Settings: stages", "Settings: stages.reuse", "Settings: fit", "Settings: fit.arrival_model",
             "Settings: fit.arrival_model.modulation", "Settings: fit.sessions", "Settings: ingest",
             "Settings: ingest.outliers"]
    assert [c for c in found if c in known] == known  # in the tree's order, each nested branch after its parent
    assert found["Settings: run"] == {"window_s": "600", "idc_scales_s": "1, 10, 60, 600", "group_by": "model,service",
                                      "top_k": "1, 5, 10", "fit_sample": "200000", "seed": "0"}
    assert found["Settings: stages"]["ks_fits"] == "0.05" and "reuse" not in found["Settings: stages"]
    assert found["Settings: stages.reuse"]["coarser_blocks"] == "64, 512, 2048"
    assert found["Settings: fit.arrival_model"]["candidates"] == "renewal, cox, cox-renewal"
    assert found["Settings: fit.arrival_model.modulation"] == {
        "theta_s": "1.0, 8.0, 60.0, 400.0", "bin_s": "0.25",
        "tau_s": "0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0", "min_sigma2": "0.001"}
    assert found["Settings: ingest"] == {"format": "auto", "mapping": "none", "time_unit": "auto"}
    assert found["Settings: ingest.outliers"]["gap_floor_s"] == "86400.0"

    def leaves(d):
        return sum(leaves(v) if isinstance(v, dict) and v else 1 for v in d.values())

    assert sum(len(t) for t in found.values()) == leaves(doc["settings"])  # every leaf once, none twice
    assert "{" not in "".join(v for t in found.values() for v in t.values())  # no branch shown as JSON
    line = html.unescape(re.search(r"<li>(Characterization of .*?)</li>", cite, re.S).group(1))
    assert 'window_s=600' in line and "stages, fit, ingest settings tabled below" in line and "ks_fits" not in line


def test_big_tables_are_thinned(tmp_path):
    import numpy as np
    import polars as pl

    big = tables()
    n = 2_000_000  # rate bins of a long trace
    big["rate_series"] = pl.DataFrame({"bin_start_s": np.arange(n) * 1.0, "rate_rps": np.ones(n)})
    big["group_counts"] = pl.DataFrame({"group_key": [f"c{i}" for i in range(300_000)],
                                        "requests": np.arange(300_000)})
    out = write_trace_dir(tmp_path / "big", tables_=big)
    size = write_report(out).stat().st_size
    assert size < 5_000_000
    s = specs((out / "report.html").read_text())
    rows = {k: sum(len(v) for v in spec.get("datasets", {}).values()) for k, spec in s.items()}
    assert rows["fig-rate-rate"] <= 2000 and rows["fig-clients-lorenz"] <= 600


def test_run_outputs_get_their_sections(tmp_path):
    import polars as pl

    from servetrace.io import write_json, write_parquet

    out = write_trace_dir(tmp_path / "runs")
    write_json(out / "fidelity.json", {"pass": False, "checks": {"rate_mape": {"value": 0.2, "threshold": 0.1,
                                                                               "pass": False}},
                                       "iat_cv": {"source": 2.3, "synthetic": 2.1}})
    write_json(out / "provision.json", {"latency": "p99 ttft <= 2 s", "model": {"target_s": 2.0},
                                        "capacity": {"source": 10, "ours": 10, "naive": 5},
                                        "error": {"ours": 0.0, "naive": -0.5}, "traces": {}})
    write_parquet(out / "tables" / "provision_curve.parquet", pl.DataFrame(
        {"servers": [1, 2, 1, 2], "trace": ["source", "source", "naive", "naive"],
         "latency_s": [9.0, 1.0, 3.0, 0.5]}).to_arrow())
    html = write_report(out).read_text()
    assert '<section id="fidelity">' in html and '<section id="provision">' in html
    assert "-50.0 %" in html and "FAIL" in html and "fig-provision-provision-curve" in specs(html)


def test_out_option_writes_elsewhere(trace_dir, tmp_path):
    target = write_report(trace_dir, tmp_path / "elsewhere.html")
    assert target == tmp_path / "elsewhere.html" and target.read_text().startswith("<!DOCTYPE html>")


def test_comparison_draws_both_traces_side_by_side(trace_dir, tmp_path):
    other = findings_doc(source="bench.csv")
    other["arrivals"]["iat_cv"] = 0.97
    b = write_trace_dir(tmp_path / "bench", other)
    html = write_comparison(trace_dir, b, tmp_path / "cmp").read_text()
    s = specs(html)
    assert s["fig-arrivals-side-idc"]["hconcat"] and len(s["fig-arrivals-side-idc"]["hconcat"]) == 2
    assert ">2.35</span>" in html and ">0.970</span>" in html
    assert "burst&lt;y&gt;.csv" in html and "bench.csv" in html


@pytest.mark.parametrize("content, message", [
    (None, "no findings"), ("{not json", "not valid JSON"), ('{"schema": "other"}', "not a servetrace findings file"),
])
def test_bad_directory_is_a_one_line_error(tmp_path, content, message):
    if content is not None:
        (tmp_path / "findings.json").write_text(content)
    with pytest.raises(ServetraceError, match=message):
        load_inputs(tmp_path)


def test_number_formatting():
    assert fmt_number(0.0578704) == "0.0579" and fmt_number(1234567) == "1,234,567"
    assert fmt_number(2.345) == "2.35" and fmt_number(48.0) == "48.0" and fmt_number(None) == "—"


def test_report_command(trace_dir, tmp_path):
    from conftest import run_cli

    done = run_cli("report", trace_dir, "--out", tmp_path / "r.html", check=True)
    assert "report:" in done.stdout and (tmp_path / "r.html").stat().st_size > 100_000
    run_cli("report", trace_dir, trace_dir, "--out", tmp_path / "both", check=True)
    assert (tmp_path / "both" / "report.html").exists()
    bad = run_cli("report", tmp_path / "missing")
    assert bad.returncode == 2 and "no such directory" in bad.stderr and "Traceback" not in bad.stderr
    two = run_cli("report", trace_dir, trace_dir)
    assert two.returncode == 2 and "A B --out DIR" in two.stderr


def figure_spec(html: str, fid: str) -> str:
    return json.dumps(specs(html)[fid])


def test_reasoning_section_draws_the_mixture_and_the_ratio(tmp_path):
    from report_helpers import reasoning_parts

    finding, extra = reasoning_parts()
    doc = findings_doc()
    doc["reasoning"] = finding
    html = write_report(write_trace_dir(tmp_path / "r1", doc, {**tables(), **extra})).read_text()
    mixture = figure_spec(html, "fig-reasoning-mixture")
    # The legend names each component with its weight and median from findings.json.
    assert "component 1: weight 40.0 %, median 300 tokens" in mixture
    assert "component 2: weight 60.0 %, median 3,000 tokens" in mixture and '"mixture"' in mixture
    assert "Two separate modes: bimodal (Ashman&#39;s D 4.60" in html
    ratio = specs(html)["fig-reasoning-reason-ratio"]
    assert ratio["encoding"]["x"]["scale"]["domain"] == [0, 1] and ratio["encoding"]["x2"]["field"] == "ratio_hi"
    assert "Mean 71.0 %. Tallest bins at 95.0 % and 35.0 %." in html


def test_reasoning_table_without_components_draws_the_histogram_alone(tmp_path):
    from report_helpers import reasoning_parts

    finding, extra = reasoning_parts()
    doc = findings_doc()
    doc["reasoning"] = finding
    extra["reasoning_mixture"] = extra["reasoning_mixture"].select("reason_lo", "reason_hi", "share")
    html = write_report(write_trace_dir(tmp_path / "r1", doc, {**tables(), **extra})).read_text()
    assert "no mixture was fitted" in html and "component 1" not in figure_spec(html, "fig-reasoning-mixture")


def test_iat_fitted_families_have_a_legend_with_their_ks(tmp_path):
    from report_helpers import iat_parts

    fits, extra = iat_parts()
    doc = findings_doc()
    doc["arrivals"]["fits"] = fits
    html = write_report(write_trace_dir(tmp_path / "iat", doc, {**tables(), **extra})).read_text()
    spec = specs(html)["fig-arrivals-iat"]
    line = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "line")
    assert line["encoding"]["color"]["title"] == "fitted family" and line["encoding"]["color"].get("legend") is not None
    labels = set(line["encoding"]["color"]["sort"])
    assert labels == {"exponential · KS 0.0810", "gamma · KS 0.0213 (best)", "Weibull · KS 0.0335"}
    shown = {row["family"] for data in spec["datasets"].values() for row in data if "family" in row}
    assert shown <= labels and "gamma · KS 0.0213 (best)" in shown


def test_provision_curve_falls_back_to_provision_json_and_fidelity_says_what_failed(tmp_path):
    from servetrace.io import write_json

    out = write_trace_dir(tmp_path / "runs")
    write_json(out / "fidelity.json", {"checks": {"rate_mape": {"value": 0.2, "threshold": 0.1, "pass": False},
                                                  "iat_cv": {"value": 0.01, "threshold": 0.1, "pass": True},
                                                  "top_share_5": {"value": None, "threshold": 0.02, "pass": None,
                                                                  "reason": "no client ids"}}})
    # No tables/provision_curve.parquet (a later characterize replaced tables/): the curve comes from the JSON.
    write_json(out / "provision.json", {"latency": "p99 ttft <= 2 s", "model": {"target_s": 2.0, "quantile": 0.99,
                                                                              "metric": "ttft"},
                                        "capacity": {"source": 6, "ours": 5, "naive": 3},
                                        "error": {"ours": -1 / 6, "naive": -0.5},
                                        "curve": {"servers": [1, 2, 3], "source": [7.2, 3.3, 1.9],
                                                  "ours": [5.3, 2.7, 1.9], "naive": [3.5, 1.9, 1.8]}})
    html = write_report(out).read_text()
    spec = specs(html)["fig-provision-provision-curve"]
    rows = [r for data in spec["datasets"].values() for r in data if "latency_s" in r]
    assert sorted((r["trace"], r["servers"], r["latency_s"]) for r in rows) == sorted(
        [("source", 1, 7.2), ("source", 2, 3.3), ("source", 3, 1.9), ("ours", 1, 5.3), ("ours", 2, 2.7),
         ("ours", 3, 1.9), ("naive", 1, 3.5), ("naive", 2, 1.9), ("naive", 3, 1.8)])
    assert "p99 TTFT (s)" in json.dumps(spec)
    assert "the source trace needs 6 servers; ours 5 (-16.7 %); naive 3 (-50.0 %)." in html
    assert "1 of 2 fidelity checks pass; rate_mape fails (0.200 against at most 0.100)." in html
    assert "not checked (no client ids)" in html


def test_failure_runs_pool_windows_by_their_counts():
    import numpy as np

    from servetrace.stages.failures import failure_runs

    windows = tables()["window_rates"]  # 288 windows: pooled 3 at a time into 96 runs
    runs = failure_runs(windows, 600.0, 120)
    failed = windows["failed"].to_numpy().reshape(96, 3).sum(axis=1)
    requests = windows["requests"].to_numpy().reshape(96, 3).sum(axis=1)
    keep = requests > 0
    assert runs.height == keep.sum() and runs["run_s"].unique().to_list() == [1800.0]
    assert np.allclose(runs["failure_rate"].to_numpy(), failed[keep] / requests[keep])
    assert runs["run_start_s"].to_list() == (np.arange(96) * 1800.0)[keep].tolist()


def test_failure_rate_over_time_draws_the_stage_runs(page):
    import numpy as np

    runs = tables()["failure_runs"]
    spec = specs(page)["fig-failures-failures-time"]
    rows = next(data for data in spec["datasets"].values() if data and "requests" in data[0] and "value" in data[0])
    assert len(rows) == runs.height
    assert np.allclose([r["value"] for r in rows], runs["failure_rate"].to_numpy())
    assert "Share of failed requests per 30 min; 1.83 % overall (dashed)." in page


def test_paired_caption_keeps_the_shared_part_once_and_names_each_trace():
    from servetrace.report.compare import paired_caption

    a, b = "Dots: observed. Best fit: Weibull.", "Dots: observed. Best fit: gamma."
    assert paired_caption(a, b, "june", "july") == "Dots: observed. june: Best fit: Weibull. july: Best fit: gamma."
    assert paired_caption(a, a, "june", "july") == a


def test_one_group_draws_no_client_charts(tmp_path):
    doc = findings_doc()
    doc["clients"] = {"group_by": "all", "group_by_reason": "no client ids and nothing to group by: one group",
                      "count": 1, "top_share": {"1": 1.0}}
    html = write_report(write_trace_dir(tmp_path / "one", doc)).read_text()
    assert "fig-clients-lorenz" not in specs(html) and "fig-clients-client-cv" not in specs(html)
    assert html.count("one group only (no client ids and nothing to group by: one group)") == 2


def test_length_drift_draws_each_period_against_the_whole_trace(tmp_path):
    import polars as pl

    drift = pl.DataFrame({"field": ["input"] * 3 + ["output"] * 3, "period_idx": [0, 1, 2] * 2,
                          "period_start_s": [0.0, 86400.0, 172800.0] * 2,
                          "ks_vs_all": [0.01, 0.05, 0.02, 0.004, 0.02, 0.01]})
    doc = findings_doc()
    doc["lengths"]["drift"] = {"period_s": 86400.0}
    html = write_report(write_trace_dir(tmp_path / "drift", doc, {**tables(), "length_drift": drift})).read_text()
    rows = [r for data in specs(html)["fig-lengths-length-drift"]["datasets"].values() for r in data]
    assert sorted((r["kind"], r["ks"]) for r in rows) == sorted(zip(drift["field"], drift["ks_vs_all"]))
    assert "compares the lengths in one period of 24 h with the whole trace" in html
