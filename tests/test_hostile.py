"""Hostile content: a trace's strings never run code, never break the HTML page, never become paths."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conftest import ROOT
from servetrace.errors import ServetraceError

MODELS = ["<img src=x onerror=alert(1)>", "</script><script>alert(2)</script>", '"q" & <b>x</b>', "plain"]
CLIENTS = ["../../etc/x", "/etc/passwd", "..\\..\\win", 'c"; rm -rf /', "ok"]
# Library calls that run or unpickle data; the package must use none of them.
FORBIDDEN = re.compile(r"\beval\(|\bexec\(|pickle|marshal|shelve|literal_eval|yaml\.load\(|shell=True|os\.system|"
                       r"allow_pickle|__import__|\bdill\b|joblib")


def test_package_never_evaluates_or_unpickles():
    hits = []
    for path in [*(ROOT / "pipeline").rglob("*.py"), *(ROOT / "sql").rglob("*.sql")]:
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if FORBIDDEN.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    assert not hits, "\n".join(hits)


def test_servegen_strings_are_parsed_not_evaluated(tmp_path):
    from servetrace.bundle.servegen_import import import_servegen_pool

    marker = tmp_path / "pwned"
    payloads = [f"__import__('pathlib').Path({str(marker)!r}).touch()",
                f"{{1: 1.0}} if __import__('pathlib').Path({str(marker)!r}).touch() else {{1: 1.0}}",
                "{1: (lambda: 1.0)()}", "{'__class__': 1.0}"]
    for i, payload in enumerate(payloads):
        pool = tmp_path / f"pool{i}"
        pool.mkdir()
        (pool / "chunk-0-trace.csv").write_text("0,1.5,1.0,Gamma,1.0,0.6666666667\n")
        (pool / "chunk-0-dataset.json").write_text(
            json.dumps({"0": {"input_tokens": payload, "output_tokens": "{10: 1.0}"}}))
        with pytest.raises(ServetraceError, match="not a dict literal of numbers"):
            import_servegen_pool(pool)
    assert not marker.exists()


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A characterized trace whose model names and client ids are hostile strings."""
    from servetrace.characterization import characterize

    tmp = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    n = 3000
    pl.DataFrame({
        "timestamp": np.sort(rng.uniform(0, 2 * 86400, n)).round(3),
        "client_id": np.array(CLIENTS)[rng.integers(0, len(CLIENTS), n)],
        "model": np.array(MODELS)[rng.integers(0, len(MODELS), n)],
        "input_tokens": rng.integers(1, 2000, n), "output_tokens": rng.integers(1, 500, n),
    }).write_csv(tmp / "hostile.csv")
    out = tmp / "run"
    characterize(tmp / "hostile.csv", out, quiet=True)
    return tmp, out


def test_report_escapes_trace_strings(hostile_run):
    _, out = hostile_run
    html = (out / "report.html").read_text(encoding="utf-8")
    for raw in MODELS[:3]:
        assert raw not in html, f"unescaped {raw!r} in the page"
    # Every occurrence of the payload is an escaped one: HTML entities in the page, \u003c in JSON.
    payload = "src=x onerror=alert(1)"
    escaped = html.count(f"&lt;img {payload}&gt;") + html.count(f"\\u003cimg {payload}\\u003e")
    assert escaped >= 1 and html.count(payload) == escaped
    assert html.count("alert(2)") == html.count("&lt;/script&gt;&lt;script&gt;alert(2)") + html.count(
        "\\u003c/script\\u003e\\u003cscript\\u003ealert(2)")
    tags = set(re.findall(r"<script[^>]*>", html, flags=re.I))
    assert all("alert" not in t for t in tags) and len(tags) <= 4, tags


def test_exports_never_use_client_ids_as_paths(hostile_run):
    pytest.importorskip("servetrace.exports", reason="exports have not landed")
    from servetrace.bundle.cli_support import fit_to_bundle
    from servetrace.exports import export
    from servetrace.settings import Settings

    tmp, out = hostile_run
    fit_to_bundle(out, Settings(group_by="client_id"))
    exp = tmp / "exports"
    for to in ("servegen", "knobs"):
        export(out, to, exp / to)
    for to in ("mooncake", "burstgpt", "vidur"):
        export(out, to, exp / f"{to}.out")
    created = [p for p in tmp.rglob("*")]
    assert all(p.resolve().is_relative_to(tmp.resolve()) for p in created)
    names = {part for p in created for part in p.relative_to(tmp).parts}
    assert not {n for n in names if ".." in n or "etc" in n or "passwd" in n or "\\" in n}, names
    assert not (tmp / "etc").exists() and not Path("/etc/x").exists()
    with pytest.raises(ServetraceError, match="--model"):
        export(out, "servegen", exp / "evil", model="../../evil")
