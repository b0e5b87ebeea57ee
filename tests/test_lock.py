"""Two runs on one output directory: the second fails at once with a clear message, and the
first one's outputs are left exactly as they were."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import FIXTURES, ROOT
from servetrace import cli
from servetrace.errors import ServetraceError
from servetrace.ingest import ingest_trace

TRACE = FIXTURES / "ingest" / "burstgpt_v1.csv"
MESSAGE = "another servetrace run is writing this directory"
HOLD = "import sys; from servetrace.io import output_lock\nwith output_lock(sys.argv[1]):\n print('held', flush=True); sys.stdin.read()"


@pytest.fixture
def held(tmp_path):
    """An output directory with earlier outputs, locked by another process for the test's duration."""
    out = tmp_path / "out"
    ingest_trace(TRACE, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith(".")}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    assert proc.stdout.readline().strip() == "held"
    yield out, before
    proc.stdin.close()
    proc.wait(timeout=30)


def test_second_run_fails_with_a_clear_message(held):
    out, before = held
    with pytest.raises(ServetraceError, match=MESSAGE):
        ingest_trace(TRACE, out)
    with pytest.raises(ServetraceError, match=MESSAGE):
        ingest_trace(FIXTURES / "ingest" / "azure2023.csv", out)  # a different trace: no cache shortcut
    from servetrace.characterization import characterize

    with pytest.raises(ServetraceError, match=MESSAGE):
        characterize(TRACE, out, quiet=True)
    fit = pytest.importorskip("servetrace.bundle.cli_support")
    from servetrace.settings import Settings

    with pytest.raises(ServetraceError, match=MESSAGE):
        fit.fit_to_bundle(out, Settings())
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert after == before, "the refused runs changed nothing"


def test_cli_refusal_is_one_line_exit_2(held, capsys, monkeypatch):
    out, _ = held
    monkeypatch.setattr(sys, "argv", ["servetrace", "characterize", str(TRACE), "--out", str(out), "-q"])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip() == f"servetrace: error: {out}: {MESSAGE}"


def test_lock_is_released_after_a_run_and_after_an_error(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ServetraceError):
        ingest_trace(ROOT / "tests" / "bad_inputs" / "header_only.csv", out)
    assert ingest_trace(TRACE, out)["rows_kept"] == 5  # the failed run let go of the lock
    assert ingest_trace(FIXTURES / "ingest" / "azure2023.csv", out)["rows_kept"] == 3


def test_report_is_refused_while_a_run_writes(held):
    """Rebuilding the report reads findings, tables and the bundle: not while a run writes them."""
    from servetrace.report import write_report

    out, before = held
    with pytest.raises(ServetraceError, match=MESSAGE):
        write_report(out)
    assert not (out / "report.html").exists()


def test_characterize_again_keeps_tables_other_commands_wrote(tmp_path):
    """tables/ is rebuilt as a whole; validate's and provision's tables stay, a stale table of the
    earlier characterization does not."""
    import polars as pl

    from servetrace.characterization import characterize
    from servetrace.io import WRITTEN_BY, parquet_metadata, write_parquet

    out = tmp_path / "out"
    characterize(TRACE, out, quiet=True)
    frame = pl.DataFrame({"servers": [1, 2], "latency_s": [3.0, 1.0]}).to_arrow()
    write_parquet(out / "tables" / "provision_curve.parquet", frame, {WRITTEN_BY: "provision"})
    write_parquet(out / "tables" / "stale_stage.parquet", frame, {"servetrace.table": "stale_stage"})
    characterize(TRACE, out, quiet=True)
    kept = pl.read_parquet(out / "tables" / "provision_curve.parquet")
    assert kept["latency_s"].to_list() == [3.0, 1.0]
    assert parquet_metadata(out / "tables" / "provision_curve.parquet")[WRITTEN_BY] == "provision"
    assert not (out / "tables" / "stale_stage.parquet").exists()
    assert (out / "tables" / "window_rates.parquet").exists()
