"""--memory-limit reaches DuckDB in ingest and in every stage; a trace larger than the limit
completes (DuckDB spills to the output directory) or fails with a clear one-line message."""

from __future__ import annotations

import sys

import duckdb
import numpy as np
import polars as pl
import pytest

from servetrace import cli
from servetrace.characterization import characterize
from servetrace.errors import ServetraceError
from servetrace.db import connect
from servetrace.ingest import ingest_trace
from servetrace.settings import Settings
from servetrace.stages import sql


def burstgpt_like(path, n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    inp, out = rng.integers(1, 4000, n), rng.integers(0, 800, n)
    pl.DataFrame({
        "Timestamp": np.sort(rng.integers(0, 3 * 86400, n)),
        "Model": np.array(["ChatGPT", "GPT-4"])[rng.integers(0, 2, n)],
        "Request tokens": inp, "Response tokens": out, "Total tokens": inp + out,
        "Log Type": np.array(["Conversation log", "API log"])[rng.integers(0, 2, n)],
    }).write_csv(path)
    return path


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    return burstgpt_like(tmp_path_factory.mktemp("mem") / "big.csv", 300_000)


def _mib(con) -> float:
    text = con.execute("select current_setting('memory_limit')").fetchone()[0]
    number, unit = text.split()
    return float(number) * {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}[unit]


def test_the_limit_reaches_duckdb(tmp_path, monkeypatch):
    assert 55 <= _mib(connect(memory_limit="64MB")) <= 64
    small = burstgpt_like(tmp_path / "s.csv", 2_000)
    ingest_trace(small, tmp_path / "out")
    with sql.connect(tmp_path / "out" / "requests.parquet", "64MB") as con:
        assert 55 <= _mib(con) <= 64
    seen = []
    real = sql.connect
    monkeypatch.setattr(sql, "connect", lambda *a, **k: (seen.append(a[1] if len(a) > 1 else k.get("memory_limit")),
                                                           real(*a, **k))[1])
    characterize(small, tmp_path / "out", Settings(memory_limit="96MB"), quiet=True)
    assert seen == ["96MB"], "characterize hands --memory-limit to its stage database"


def test_larger_than_the_limit_completes(big, tmp_path):
    s = ingest_trace(big, tmp_path / "out", memory_limit="64MB")
    assert (s["rows_read"], s["rows_kept"], s["rows_rejected"]) == (300_000, 300_000, 0)
    assert pl.read_parquet(tmp_path / "out" / "requests.parquet")["arrival_s"].is_sorted()
    assert not (tmp_path / "out" / ".spill").exists(), "the spill directory is removed"


def run_main(argv, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["servetrace", *map(str, argv)])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    return exc.value.code, capsys.readouterr().err


@pytest.mark.parametrize("command, limit, message", [
    ("ingest", "8MB", "DuckDB ran out of memory under --memory-limit 8MB"),
    ("characterize", "4MB", "DuckDB ran out of memory under --memory-limit 4MB"),
    ("ingest", "lots", "--memory-limit 'lots': not a size DuckDB understands"),
    ("characterize", "lots", "--memory-limit 'lots': not a size DuckDB understands"),
])
def test_too_small_or_invalid_limit_is_one_clear_line(big, tmp_path, capsys, monkeypatch, command, limit, message):
    out = tmp_path / "out"
    if command == "characterize":
        ingest_trace(big, out)  # cached: the limit meets the stage database, not ingest
    quiet = ["-q"] if command == "characterize" else []
    code, err = run_main([command, big, "--out", out, "--memory-limit", limit, *quiet], capsys, monkeypatch)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert message in err, err


def test_out_of_memory_is_a_servetrace_error(big, tmp_path):
    with pytest.raises(ServetraceError, match="ran out of memory"):
        ingest_trace(big, tmp_path / "o", memory_limit="8MB")
    assert issubclass(duckdb.OutOfMemoryException, duckdb.Error)
