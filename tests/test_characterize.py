"""`servetrace characterize` end to end: real samples, a ServeGen-sampled trace, determinism, the contract."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SHARED, run_cli, shared_file

CONTRACT = {
    "trace": ("rows_read", "rows_kept", "rows_rejected", "span_s", "format", "sha256"),
    "arrivals": ("rate_rps", "iat_cv", "idc", "best_fit", "peak_to_mean"),
    "clients": ("group_by", "count", "top_share", "gini"),
    "lengths": ("input", "output", "correlation"),
    "failures": ("rate",),
}


def characterize(trace, out, *extra):
    run_cli("characterize", trace, "--out", out, "--quiet", *extra, check=True)
    return json.loads((out / "findings.json").read_text())


@pytest.mark.parametrize("sample", [("burstgpt", "BurstGPT_1_head400.csv"), ("burstgpt", "BurstGPT_3_head400.csv"),
                                    ("azure2023", "AzureLLMInferenceTrace_conv.csv")])
def test_real_samples(tmp_path, sample):
    doc = characterize(shared_file(*sample), tmp_path)
    for area, keys in CONTRACT.items():
        assert set(keys) <= set(doc[area]), area
        assert doc[area]["statement"]
    assert set(doc["arrivals"]["idc"]) == {"1", "10", "60", "600"}
    assert (tmp_path / "tables" / "window_rates.parquet").exists()
    if "BurstGPT" in sample[1]:
        assert doc["quality"]["resolution_s"] == 1.0 and doc["quality"]["derounded"]
        assert doc["failures"]["rate"] > 0
    if "BurstGPT_3" in sample[1]:
        assert doc["sessions"]["sessions"] > 100
    if sample[0] == "azure2023":
        assert doc["trace"]["rows_kept"] == 19_366
        assert doc["quality"]["resolution_s"] is None


def test_same_input_gives_identical_findings(tmp_path):
    trace = shared_file("burstgpt", "BurstGPT_1_head400.csv")
    a = characterize(trace, tmp_path / "a")
    b = characterize(trace, tmp_path / "b", "--window", "600")
    a.pop("created_at"), b.pop("created_at")
    assert json.dumps(a) == json.dumps(b)
    assert str(tmp_path) not in json.dumps(a)


def test_json_summary_and_reuse(tmp_path):
    trace = shared_file("burstgpt", "BurstGPT_3_head400.csv")
    characterize(trace, tmp_path)
    proc = run_cli("characterize", trace, "--out", tmp_path, "--json", "--quiet", check=True)
    summary = json.loads(proc.stdout)
    assert summary["cached"] is True and "window_rates" in summary["tables"]


def test_bad_option_is_one_line_error(tmp_path):
    trace = shared_file("burstgpt", "BurstGPT_1_head400.csv")
    proc = run_cli("characterize", trace, "--out", tmp_path, "--window", "0", "--quiet")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--window" in proc.stderr
    proc = run_cli("characterize", trace, "--out", tmp_path, "--group-by", "colour", "--quiet")
    assert proc.returncode == 2 and "--group-by" in proc.stderr


def test_servegen_sampled_generic_trace(tmp_path):
    tool = SHARED / "tools" / "make_bench_trace.py"
    if not tool.exists():
        pytest.skip(f"{tool} is absent (../shared is not beside the repo)")
    trace = tmp_path / "r1.csv"
    subprocess.run([sys.executable, str(tool), str(trace), "--rows", "20000", "--schema", "generic",
                    "--pool", "reason/deepseek-r1"], check=True, capture_output=True, cwd=ROOT)
    doc = characterize(trace, tmp_path / "out")
    assert doc["clients"]["group_by"] == "client_id" and doc["clients"]["count"] > 10
    assert 0 < doc["clients"]["gini"] < 1
    assert doc["reasoning"]["modes"][0]["weight"] > 0
    assert 0.5 < doc["reasoning"]["reason_ratio_mean"] < 0.95
    assert doc["lengths"]["reason"]["p50"] > 0


def test_readme_documents_the_command():
    readme = (ROOT / "README.md").read_text()
    assert "servetrace characterize" in readme and "findings.json" in readme


def test_a_format_without_failures_does_not_claim_none_failed(tmp_path):
    """Regression: Azure traces (served requests only) were reported as '0 % failed'."""
    doc = characterize(shared_file("azure2023", "AzureLLMInferenceTrace_conv.csv"), tmp_path)
    assert doc["failures"]["rate"] is None and doc["failures"]["recorded"] is False
    assert "unknown" in doc["failures"]["statement"]


def _tiny_pool(path):
    """A two-client ServeGen language pool (one with a dataset file, one without)."""
    path.mkdir()
    (path / "chunk-0-trace.csv").write_text("0,1.5,1.0,Gamma,1.0,0.6666666667\n600,3.0,2.0,Weibull,0.5427,0.1533\n")
    (path / "chunk-0-dataset.json").write_text(json.dumps(
        {"0": {"input_tokens": "{100: 0.25, 200: 0.75}", "output_tokens": "{10: 1.0}"}}))
    (path / "chunk-1-trace.csv").write_text("0,0.5,1.0,Gamma,1.0,2.0\n")
    return path


def test_characterize_servegen_pool_no_importerror(tmp_path):
    """`characterize POOL_DIR` once ended in "internal error: ImportError: ingest_servegen_pool": a
    pool is imported as the bundle (as `ingest POOL_DIR` does) and the summary says no stage ran."""
    pool = _tiny_pool(tmp_path / "pool")
    out = tmp_path / "out"
    proc = run_cli("characterize", pool, "--out", out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "error" not in proc.stderr
    assert "imported as a bundle" in proc.stdout and "1 clients" in proc.stdout
    assert "chunk-1-trace.csv" in proc.stdout  # the trace file without a dataset is named
    assert "not characterized" in proc.stdout and "findings.json" in proc.stdout
    bundle = json.loads((out / "bundle.json").read_text())
    assert [c["id"] for c in bundle["clients"]] == ["0"] and bundle["category"] == "language"
    assert not (out / "findings.json").exists() and not (out / "report.html").exists()
    # the same bundle as `ingest POOL_DIR` and `bundle from-servegen` write
    run_cli("ingest", pool, "--out", tmp_path / "ingested", check=True)
    other = json.loads((tmp_path / "ingested" / "bundle.json").read_text())
    bundle.pop("created_at", None), other.pop("created_at", None)
    assert bundle == other
    summary = json.loads(run_cli("characterize", pool, "--out", out, "--json", check=True).stdout)
    assert summary["characterized"] is False and summary["imported"]["clients"] == 1
    # the library's ingest refuses a pool with a clear line, not an ImportError
    from servetrace.errors import ServetraceError
    from servetrace.ingest import ingest_trace

    with pytest.raises(ServetraceError, match="holds fitted parameters, not requests"):
        ingest_trace(pool, tmp_path / "x")


def test_summary_ends_with_where_the_outputs_are(tmp_path):
    trace = shared_file("burstgpt", "BurstGPT_1_head400.csv")
    lines = run_cli("characterize", trace, "--out", tmp_path, "--quiet", check=True).stdout.strip().splitlines()
    assert lines[-4] == "outputs:"
    shown = {line.split()[0]: line.split()[1] for line in lines[-3:]}
    assert shown == {"report": str(tmp_path / "report.html"), "findings": str(tmp_path / "findings.json"),
                     "bundle": str(tmp_path / "bundle.json")}
    assert all(Path(p).is_file() for p in shown.values())


def test_bundle_models_run_beside_the_stages_but_an_agent_model_after_them(tmp_path, monkeypatch):
    """The bundle's models run on the row stream's thread while the stages' connection is still open;
    an agent trace's (its model opens a DuckDB database of its own) on the caller's thread, once that
    connection is closed, so two databases never hold memory at once."""
    import contextlib
    import threading

    from conftest import FIXTURES
    from servetrace.bundle import fit as fit_module
    from servetrace.characterization import characterize
    from servetrace.stages.engine import Engine

    open_now: list = []
    seen: list[tuple[bool, int]] = []
    connect, with_models = Engine.connect, fit_module.with_models

    @contextlib.contextmanager
    def counted_connect(self, *args, **kwargs):
        with connect(self, *args, **kwargs) as con:
            open_now.append(con)
            try:
                yield con
            finally:
                open_now.remove(con)

    def watched_models(*args, **kwargs):
        seen.append((threading.current_thread() is threading.main_thread(), len(open_now)))
        return with_models(*args, **kwargs)

    monkeypatch.setattr(Engine, "connect", counted_connect)
    monkeypatch.setattr(fit_module, "with_models", watched_models)
    characterize(FIXTURES / "ingest" / "burstgpt_v1.csv", tmp_path / "plain", quiet=True)
    characterize(FIXTURES / "agentic" / "cctraces", tmp_path / "agents", quiet=True)
    assert seen == [(False, 1), (True, 0)]
    assert "agents" in json.loads((tmp_path / "agents" / "bundle.json").read_text())


def test_late_imports_are_made_during_the_ingest_on_a_thread_of_their_own(tmp_path):
    """scipy.optimize (the arrival model's modulation fit) and jinja2 (the report) are imported on a
    thread started with the ingest, so their ~0.25 s overlaps DuckDB's work instead of following
    the stages; that thread has ended when characterize returns."""
    from conftest import FIXTURES

    probe = f"""
import importlib.abc, sys, threading
seen = []
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ("scipy.special", "scipy.optimize", "jinja2"):
            seen.append(threading.current_thread().name)
        return None
sys.meta_path.insert(0, Watch())
from servetrace.characterization import characterize
assert not seen, seen  # not imported with the package: a small trace's start-up does not wait for them
characterize({str(FIXTURES / "ingest" / "burstgpt_v1.csv")!r}, {str(tmp_path / "out")!r}, quiet=True)
print(seen, [t.name for t in threading.enumerate() if t.name == "servetrace-imports"])
"""
    got = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert got.stdout.strip().splitlines()[-1] == "['servetrace-imports', 'servetrace-imports', 'servetrace-imports'] []"
    assert (tmp_path / "out" / "bundle.json").is_file()


def test_on_a_large_input_the_late_imports_wait_for_the_row_stream_to_end(tmp_path):
    """Past late_imports.MAX_BYTES the late modules are imported on a thread of their own once the
    row stream (and its peak RSS) is over, during the fit's second pass, not on the critical path;
    scipy.special, which the stages' fits use, once the stream has started, not before it."""
    from conftest import FIXTURES

    probe = f"""
import importlib.abc, sys, threading
from servetrace import characterization, late_imports
from servetrace.rows import stream
late_imports.MAX_BYTES = 0
started, ended, seen, special = [], [], [], []
one_pass = stream.one_pass
def watched(*a, **k):
    started.append(True)
    try:
        return one_pass(*a, **k)
    finally:
        ended.append(True)
stream.one_pass = watched
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ("scipy.optimize", "jinja2"):
            seen.append((threading.current_thread().name, bool(ended)))
        if name == "scipy.special":
            special.append(bool(started))
        return None
sys.meta_path.insert(0, Watch())
characterization.characterize({str(FIXTURES / "ingest" / "burstgpt_v1.csv")!r}, {str(tmp_path / "out")!r}, quiet=True)
print(seen, special)
"""
    got = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    assert got.stdout.strip().splitlines()[-1] == "[('servetrace-imports', True), ('servetrace-imports', True)] [True]"


def test_late_imports_overlap_only_a_small_input(tmp_path):
    """On a large input the ingest already keeps both cores busy: no import thread, so the imported
    modules do not sit under the row stream's peak RSS. A directory or pattern counts as large."""
    from servetrace.late_imports import MAX_BYTES, thread

    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_text("Timestamp\n0\n")
    with large.open("wb") as f:  # sparse: no disk used
        f.truncate(MAX_BYTES)
    assert thread(small).name == "servetrace-imports"
    assert thread(large) is None
    assert thread(tmp_path) is None
    assert thread(str(tmp_path / "*.csv")) is None
