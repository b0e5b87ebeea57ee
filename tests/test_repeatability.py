"""Same input, settings and seed: findings.json, bundle.json and generated traces are byte-identical
(but for the one `created_at` field), in another process with another hash seed, in another
directory; and none of them records where outputs were written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from servetrace.ingest import ingest_trace

SAMPLE = ROOT / "data" / "samples" / "burstgpt_sample.csv"
CREATED_AT = re.compile(rb'"created_at":\s*"[^"]*"')
COMPARED = ("findings.json", "bundle.json", "synthetic.parquet", "synthetic.csv")


def run_all(trace: str, out: str) -> None:
    """characterize -> fit -> generate (Parquet and CSV), as the commands do."""
    from servetrace.bundle.cli_support import fit_to_bundle
    from servetrace.characterization import characterize
    from servetrace.generation import GenerateOptions
    from servetrace.generation.run import generate_file
    from servetrace.settings import Settings

    characterize(trace, out, quiet=True)
    fit_to_bundle(out, Settings())
    options = GenerateOptions(seed=7, duration_s=2 * 3600)
    for name in ("synthetic.parquet", "synthetic.csv"):
        generate_file(Path(out) / "bundle.json", Path(out) / name, options, None)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    pytest.importorskip("servetrace.bundle.cli_support", reason="fit has not landed")
    pytest.importorskip("servetrace.generation.run", reason="generate has not landed")
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is absent")
    tmp = tmp_path_factory.mktemp("repeat")
    trace = tmp / "trace.csv"
    with open(SAMPLE, "rb") as f:
        trace.write_bytes(b"".join(f.readline() for _ in range(3_001)))
    alpha, beta = tmp / "alpha_run", tmp / "elsewhere" / "beta_run"
    run_all(str(trace), str(alpha))
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); from test_repeatability import run_all; run_all(*sys.argv[1:])"
    subprocess.run([sys.executable, "-c", code, str(trace), str(beta)], check=True, cwd=ROOT, env=env)
    return alpha, beta


@pytest.mark.parametrize("name", COMPARED)
def test_byte_identical_but_created_at(two_runs, name):
    alpha, beta = (Path(d) / name for d in two_runs)
    a, b = alpha.read_bytes(), beta.read_bytes()
    assert len(CREATED_AT.findall(a)) <= 1, "at most one creation time, in `created_at`"
    assert CREATED_AT.sub(b"", a) == CREATED_AT.sub(b"", b), f"{name} differs between two identical runs"


@pytest.mark.parametrize("name", COMPARED)
def test_no_output_location_inside(two_runs, name):
    for out in two_runs:
        data = (Path(out) / name).read_bytes()
        for marker in (out.name, str(out), str(out.parent)):
            assert marker.encode() not in data, f"{name} records the output location {marker}"


def test_cache_keyed_by_content_and_settings(tmp_path):
    from servetrace.settings import IngestSettings

    trace = tmp_path / "t.csv"
    trace.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
                     "5,ChatGPT,472,18,490,Conversation log\n6,GPT-4,100,20,120,API log\n")
    out = tmp_path / "out"
    assert ingest_trace(trace, out)["cached"] is False
    assert ingest_trace(trace, out)["cached"] is True  # unchanged: reused
    os.utime(trace, (1, 1))
    assert ingest_trace(trace, out)["cached"] is True  # a touched file with the same bytes: reused
    trace.write_text(trace.read_text().replace("472", "473"))
    changed = ingest_trace(trace, out)
    assert changed["cached"] is False and changed["rows_kept"] == 2  # one byte changed: redone
    assert ingest_trace(trace, out, IngestSettings(format="burstgpt"))["cached"] is False  # a setting changed
    moved = tmp_path / "moved"
    out.rename(moved)
    again = ingest_trace(trace, moved, IngestSettings(format="burstgpt"))
    assert again["cached"] is True and again["requests"] == str(moved / "requests.parquet")
