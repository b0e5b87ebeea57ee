"""The agentic readers run on one chunk of the source at a time, DuckDB given the memory limit less
what the process holds: any chunking gives the same rows and rejects, a trace many chunks long
ingests with the process's peak RSS (measured in a child process, not time) under the limit, and a
limit the process alone already fills is refused up front."""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
import sys

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from servetrace.ingest import agentic, ingest_trace
from servetrace.ingest.options import ingest_settings
from test_ingest_agentic import SOURCES


def _outputs(path, out, fmt="auto"):
    summary = ingest_trace(path, out, ingest_settings(fmt, [], "auto"))
    return (summary["rows_read"], summary["rows_kept"], summary["reject_reasons"],
            pl.read_parquet(out / "requests.parquet"), pl.read_parquet(out / "rejects.parquet"))


@pytest.mark.parametrize("fmt", ["copilot", "tracelab", "cc-traces"])
def test_one_line_or_file_per_chunk_changes_nothing(tmp_path, monkeypatch, fmt):
    whole = _outputs(SOURCES[fmt], tmp_path / "whole")
    seen = []
    real = agentic._write_chunks
    monkeypatch.setattr(agentic, "_write_chunks", lambda con, p, n, sel, out: (seen.append(len(sel)),
                                                                             real(con, p, n, sel, out))[1])
    monkeypatch.setattr(agentic, "ROW_GROUP_BYTES", 1)  # a row group per line
    monkeypatch.setattr(agentic, "MAX_CHUNK_BYTES", 1)  # a chunk per row group / file
    chunked = _outputs(SOURCES[fmt], tmp_path / "chunked")
    # one chunk per line (blank too) or file; a trace file longer than a chunk in pieces of its
    # requests (ingest/agentic/split.py), here one per entry
    assert seen == [{"copilot": 5, "tracelab": 7, "cc-traces": _entries(SOURCES["cc-traces"])}[fmt]]
    assert whole[:3] == chunked[:3]
    assert whole[3].equals(chunked[3]) and whole[4].equals(chunked[4])


SESSIONS, TURNS, CALLS, METADATA = 3000, 4, 5, 2  # 60,000 calls, ~35 MB of JSON text
SESSION = ('{{"session_id": "s{s}", "date": "2026-06-01", "turns": [{turns}]}}')
TURN = '{{"turn_id": "t{k}", "llm_calls": [{calls}], "tool_batches": []}}'
CALL = ('{{"message_id": "m{s}-{k}-{c}", "timestamp": "2026-06-01T{h:02d}:{m:02d}:{sec:02d}.000Z", '
        '"duration_ms": 1000.0, "initiator_type": "agent", "model": "Model A", "result": "Success", '
        '"status_code": "OK", "tokens": {{"total": 1100, "prompt": 1000, "completion": 100, "cached": 900, '
        '"cached_pct": 90.0}}, "message_metadata": [' + ", ".join(['{{"type": "System", "role": "system", '
                                                                  '"sequenceId": 0, "token_len": 10}}'] * METADATA) + ']}}')


def _large_copilot(path) -> int:
    """A gzip Copilot trace: SESSIONS sessions of TURNS turns of CALLS calls (the generator loops
    over sessions; the reader under test is SQL)."""
    with gzip.open(path, "wt", compresslevel=1) as f:
        for s in range(SESSIONS):
            turns = []
            for k in range(TURNS):
                t0 = (s * 7 + k * 60) % 86000
                calls = ", ".join(CALL.format(s=s, k=k, c=c, h=(t0 + c) // 3600, m=(t0 + c) // 60 % 60, sec=(t0 + c) % 60)
                                  for c in range(CALLS))
                turns.append(TURN.format(k=k, calls=calls))
            f.write(SESSION.format(s=s, turns=", ".join(turns)) + "\n")
    return SESSIONS * TURNS * CALLS


CHILD = """
import json, sys
from servetrace.ingest import agentic, ingest_trace
from servetrace.errors import ServetraceError
try:
    s = ingest_trace(sys.argv[1], sys.argv[2], memory_limit=sys.argv[3])
    out = {"rows": [s["rows_read"], s["rows_kept"], s["rows_rejected"]]}
except ServetraceError as exc:
    out = {"error": str(exc)}
# the peak of this process alone: ru_maxrss keeps the parent's peak across fork and exec
out["maxrss_mb"] = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps(out))
"""
LIMIT_MB = 300


def _ingest_in_child(path, out, limit_mb: int) -> dict:
    run = subprocess.run([sys.executable, "-c", CHILD, str(path), str(out), f"{limit_mb}MB"],
                         capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_large_copilot_trace_ingests_within_the_memory_limit(tmp_path):
    """Before the readers read in chunks with a bounded read buffer, this file ran out of memory
    under this limit (peak RSS 364 MB); 35 MB of JSON is ~10x the chunk the limit allows."""
    calls = _large_copilot(tmp_path / "big.jsonl.gz")
    assert calls == 60_000
    result = _ingest_in_child(tmp_path / "big.jsonl.gz", tmp_path / "out", LIMIT_MB)
    assert result.get("rows") == [calls, calls, 0], result
    assert result["maxrss_mb"] < LIMIT_MB, result
    kept = pq.read_table(tmp_path / "out" / "requests.parquet", columns=["session_id", "turn", "cached_tokens"])
    assert kept.num_rows == calls and len(set(kept["session_id"].to_pylist())) == SESSIONS
    assert max(kept["turn"].to_pylist()) == TURNS and set(kept["cached_tokens"].to_pylist()) == {900}


def test_a_limit_below_what_the_process_holds_is_refused_up_front(tmp_path):
    result = _ingest_in_child(SOURCES["copilot"], tmp_path / "out", 100)
    assert "rows" not in result and "raise --memory-limit to at least" in result["error"], result
    assert len(result["error"].splitlines()) == 1 and not (tmp_path / "out" / "requests.parquet").exists()


def test_the_stream_after_the_reader_is_held_under_the_limit_too(tmp_path, monkeypatch):
    """After the reader, the checks, the stream and the sort keep DuckDB under the limit less what
    the process holds and the rows in flight: rows that cannot fit beside the process are refused
    there with one line naming the least limit, nothing is written, and the limit is restored."""
    from servetrace.errors import ServetraceError
    from servetrace.ingest import agentic, ingest_trace

    seen = []
    real = agentic.held_under_limit

    def spy(con, path, name, setting):
        seen.append(setting)
        return real(con, path, name, setting)

    # a gigabyte over what this process holds already (a whole test session's process can hold most of one)
    limit = f"{agentic._release_unused() // 10 ** 6 + 1000}MB"
    monkeypatch.setattr(agentic, "held_under_limit", spy)
    monkeypatch.setattr(agentic, "stream_margin", lambda flat, rows: 10 ** 12)  # a terabyte of rows in flight
    with pytest.raises(ServetraceError) as err:
        ingest_trace(SOURCES["copilot"], tmp_path / "out", memory_limit=limit)
    text = str(err.value)
    assert len(text.splitlines()) == 1 and "of rows in flight; raise --memory-limit to at least" in text
    assert int(text.rsplit(" ", 1)[1].removesuffix("MB")) > 10 ** 6  # the rows' terabyte, in MB
    assert not (tmp_path / "out" / "requests.parquet").exists() and seen == [limit]
    monkeypatch.setattr(agentic, "stream_margin", lambda flat, rows: 0)
    budgets = []

    @contextlib.contextmanager
    def record(con, path, name, setting):
        with real(con, path, name, setting) as budget:
            yield lambda *args: budgets.append(budget(*args)) or budgets[-1]
        budgets.append(con.execute("select current_setting('memory_limit')").fetchall()[0][0])

    monkeypatch.setattr(agentic, "held_under_limit", record)
    ingest_trace(SOURCES["copilot"], tmp_path / "ok", memory_limit=limit)
    # the reader's budget, then the stream's, both under the limit; the limit restored after
    cap = int(limit.removesuffix("MB")) * 10 ** 6
    shown = duckdb.connect().execute(f"set memory_limit = '{limit}'; select current_setting('memory_limit')").fetchall()[0][0]
    assert len(budgets) == 3 and budgets[0] < cap and budgets[1] < cap and budgets[2] == shown


def _entries(directory) -> int:
    """Entries of the `requests` of the directory's trace files, plus one per file that is no trace."""
    n = 0
    for f in directory.glob("*.json"):
        try:
            n += len(json.loads(f.read_text())["requests"])
        except (ValueError, KeyError, TypeError):
            n += 1
    return n


def _one_big_trace(path, calls: int, name: str = "big.json", array: bool = False) -> None:
    """One cc-traces object (kv-cache-tester's trace format, as tests/fixtures/agentic/make_fixtures.py)
    whose every 7th call ends a user turn; `array`: its calls as a bare JSON array, no trace."""
    reqs = [{"t": 2.0 * i, "type": "n", "model": "claude", "in": 1000 + 50 * (i % 400), "out": 50,
             "hash_ids": list(range(1, -(-(1000 + 50 * (i % 400)) // 64) + 1)),
             "stop": "end_turn" if i % 7 == 6 else "tool_use", "api_time": 1.0}
            for i in range(calls)]
    path.mkdir()
    (path / name).write_text(json.dumps(reqs if array else {"id": "big", "block_size": 64, "hash_id_scope": "local",
                                                            "requests": reqs}))


def test_a_trace_file_too_big_to_read_whole_is_read_in_pieces_under_the_limit(tmp_path):
    """A cc-traces file whose text DuckDB cannot hold whole under the limit (it needs ~56x; before,
    such a file was refused up front, and before that ran out of memory part way) is split into
    pieces of its `requests` and ingested with the process's peak RSS under the limit, with the same
    rows as one whole read: positions, and turns that carry across pieces."""
    _one_big_trace(tmp_path / "cc", 8000)
    assert (tmp_path / "cc" / "big.json").stat().st_size * agentic.FILE_FACTOR > LIMIT_MB * 1e6
    result = _ingest_in_child(tmp_path / "cc", tmp_path / "out", LIMIT_MB)
    assert result.get("rows") == [8000, 8000, 0], result
    assert result["maxrss_mb"] < LIMIT_MB, result
    whole = _outputs(tmp_path / "cc", tmp_path / "whole")  # DuckDB's default limit: read whole
    pieces = pl.read_parquet(tmp_path / "out" / "requests.parquet")
    assert whole[3].equals(pieces)
    assert pieces["turn"].to_list() == [1 + i // 7 for i in range(8000)]
    assert pieces["request_id"].to_list() == [f"big/{i + 1}" for i in range(8000)]


def test_a_trace_file_that_does_not_split_is_refused_up_front_with_the_limit_that_reads_it(tmp_path):
    """A file too big to read whole that is no trace object (here a bare array of calls) cannot be
    split: it is refused before any work, in one line naming the least limit."""
    _one_big_trace(tmp_path / "cc", 5000, array=True)
    result = _ingest_in_child(tmp_path / "cc", tmp_path / "out", LIMIT_MB)
    assert "rows" not in result and "is read whole" in result["error"], result
    assert len(result["error"].splitlines()) == 1 and not (tmp_path / "out" / "requests.parquet").exists()
    assert int(result["error"].rsplit(" ", 1)[1].removesuffix("MB")) > LIMIT_MB
