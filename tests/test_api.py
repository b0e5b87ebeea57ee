"""The Python API (servetrace.characterize / generate / validate / export) is what the CLI runs:
the same inputs give the same outputs either way."""

from __future__ import annotations

import json

import polars as pl
import pytest

import servetrace
from conftest import run_cli, shared_file


def _findings(out):
    doc = json.loads((out / "findings.json").read_text())
    doc.pop("created_at")
    return doc


def test_api_equals_cli(tmp_path):
    trace = shared_file("burstgpt", "BurstGPT_1_head400.csv")
    api, cli = tmp_path / "api", tmp_path / "cli"
    summary = servetrace.characterize(trace, api, window_s=300)
    run_cli("characterize", trace, "--out", cli, "--window", "300", "--quiet", check=True)
    assert _findings(api) == _findings(cli) and _findings(api)["settings"]["window_s"] == 300
    assert summary["rows_kept"] == 400 and summary["report"] == str(api / "report.html")
    for name in ("report.html", "findings.json", "bundle.json"):
        assert (api / name).is_file()

    gen = servetrace.generate(api, tmp_path / "api.parquet", duration_s=3600, seed=4)
    run_cli("generate", api, "--out", tmp_path / "cli.parquet", "--duration", "3600", "--seed", "4", check=True)
    assert (tmp_path / "api.parquet").read_bytes() == (tmp_path / "cli.parquet").read_bytes()
    assert gen["requests"] == pl.read_parquet(tmp_path / "api.parquet").height > 0

    fidelity = servetrace.validate(api, tmp_path / "api.parquet", api, page=False)
    assert json.loads((api / "fidelity.json").read_text())["checks"] == fidelity["checks"]
    assert not (api / "fidelity.html").exists()

    done = servetrace.export(tmp_path / "api.parquet", "vidur", tmp_path / "v.csv")
    run_cli("export", tmp_path / "cli.parquet", "--to", "vidur", "--out", tmp_path / "w.csv", check=True)
    assert done["path"] == str(tmp_path / "v.csv")
    assert (tmp_path / "v.csv").read_bytes() == (tmp_path / "w.csv").read_bytes()


def test_api_errors_are_servetrace_errors(tmp_path):
    with pytest.raises(servetrace.ServetraceError, match="no such"):
        servetrace.generate(tmp_path / "missing", tmp_path / "x.parquet")
    with pytest.raises(servetrace.ServetraceError, match="--map"):
        servetrace.characterize(tmp_path / "t.csv", tmp_path / "o", mapping=["nonsense"])
    with pytest.raises(servetrace.ServetraceError, match="--rate-fn"):
        servetrace.generate(tmp_path, tmp_path / "x.parquet", rate_fn=[(10.0, 1.0), (0.0, 1.0)])
