"""Agentic and 2025-26 formats: each fixture (built from its published description by
tests/fixtures/agentic/make_fixtures.py) ingests exactly: rows, arrival seconds, tokens, sessions,
the agent columns and the rejects with their source lines and reasons."""

from __future__ import annotations

import json

import polars as pl
import pytest

from conftest import FIXTURES, run_cli
from servetrace.errors import ServetraceError
from servetrace.ingest import ingest_trace
from servetrace.ingest.options import ingest_settings
from servetrace.schema import AGENT_COLUMNS, CANONICAL

AG = FIXTURES / "agentic"
SOURCES = {"copilot": AG / "copilot.jsonl.gz", "tracelab": AG / "tracelab.jsonl", "cc-traces": AG / "cctraces",
           "baseten": AG / "baseten.parquet"}


def ingest(path, out, fmt="auto"):
    summary = ingest_trace(path, out, ingest_settings(fmt, [], "auto"))
    requests = pl.read_parquet(out / "requests.parquet")
    rejects = pl.read_parquet(out / "rejects.parquet")
    assert summary["rows_read"] == summary["rows_kept"] + summary["rows_rejected"]
    assert (requests.height, rejects.height) == (summary["rows_kept"], summary["rows_rejected"])
    assert requests.columns[: len(CANONICAL)] == CANONICAL.names
    return summary, requests, rejects


def col(frame: pl.DataFrame, name: str) -> list:
    return frame[name].to_list()


def test_copilot_sessions_of_turns_of_calls(tmp_path):
    s, req, rej = ingest(SOURCES["copilot"], tmp_path)
    assert (s["format"], s["compression"], s["rows_read"], s["rows_kept"]) == ("copilot", "gzip", 7, 4)
    assert s["origin"].startswith("2026-06-01T00:00:00")
    # calls start at their ISO timestamp: 10:00:00, 10:00:05, 10:00:30 (s2), 10:01:00 (turn 2 of s1)
    assert col(req, "arrival_s") == [36000.0, 36005.0, 36030.0, 36060.0]
    assert col(req, "session_id") == ["s1", "s1", "s2", "s1"]
    assert col(req, "request_id") == ["m1", "m2", "m4", "m3"]
    assert col(req, "input_tokens") == [1000, 1200, 800, 1500]
    assert col(req, "output_tokens") == [50, 30, 40, 0]
    assert col(req, "cached_tokens") == [0, 1000, 0, 1200]
    assert col(req, "latency_s") == [2.0, 1.0, 1.5, 0.5]
    assert col(req, "turn") == [1, 1, 1, 2]
    assert col(req, "canceled") == [False, False, False, True]  # result UserCancel
    # tool_batches: m1 asked for a 3 s batch (request_id m1); the others asked for none
    assert col(req, "tool_s") == [3.0, 0.0, 0.0, 0.0]
    # function_calls of those batches (status 2 = failure/timeout) and their auto_continue: m1 asked
    # for 3 tools (1 failed) and went on; m4's batch of one failed tool did not; m2, m3 asked for none
    assert col(req, "tool_calls") == [3, 0, 1, 0]
    assert col(req, "tool_failures") == [1, 0, 1, 0]
    assert col(req, "auto_continued") == [True, None, False, None]
    assert col(req, "model") == ["Model A", "Model A", "Model A", "Model B"]
    assert req["parent_id"].null_count() == req["call_kind"].null_count() == 4  # not published
    assert list(zip(col(rej, "line"), col(rej, "item"), col(rej, "reason"))) == [
        (2, None, "not valid JSON"), (3, "turns[0].llm_calls[1]", "non-numeric input_tokens"),
        (4, None, "turns is not a list")]
    assert json.loads(rej.filter(pl.col("line") == 3)["record"][0])["message_id"] == "m5"


def test_tracelab_rounds(tmp_path):
    s, req, rej = ingest(SOURCES["tracelab"], tmp_path)
    assert (s["format"], s["rows_read"], s["rows_kept"]) == ("tracelab", 7, 4)
    # sent at the last user_message / tool_result event: 08:00:00, 08:00:06, 08:05:00, 09:00:00
    assert col(req, "arrival_s") == [28800.0, 28806.0, 29100.0, 32400.0]
    assert col(req, "session_id") == ["A", "A", "A", "B"]
    assert col(req, "client_id") == ["u1", "u1", "u1", "u2"]
    assert col(req, "service") == ["claude", "claude", "claude", "codex"]
    assert col(req, "input_tokens") == [1000, 1200, 1300, 500]
    assert col(req, "cached_tokens") == [0, 1000, 1200, 0]  # prefix_tokens
    assert col(req, "output_tokens") == [100, 50, 10, 5]
    assert col(req, "reason_tokens") == [None, 20, None, None]
    assert col(req, "latency_s") == [4.0, 1.0, 2.0, 2.0]  # to the last output event
    assert col(req, "turn") == [1, 1, 2, 1]  # a round fed by a user message opens a turn
    assert sorted(zip(col(rej, "line"), col(rej, "reason"))) == [
        (5, "timing_events is not a list"), (6, "no timestamped input or output event"),
        (7, "negative output_tokens")]


def test_cc_traces_directory_with_subagents(tmp_path):
    s, req, rej = ingest(SOURCES["cc-traces"], tmp_path)
    assert (s["format"], s["rows_read"], s["rows_kept"]) == ("cc-traces", 11, 8)
    assert s["origin"].startswith("first request") or "source clock" in s["origin"]
    assert col(req, "arrival_s") == [0.0, 0.0, 3.0, 4.6, 4.7, 5.5, 8.0, 60.0]
    assert col(req, "session_id") == ["ta", "tb", "ta", "ta", "ta", "ta", "ta", "ta"]
    assert col(req, "call_kind") == ["main", "main", "main", "subagent", "subagent", "subagent", "main", "main"]
    assert col(req, "parent_id") == [None, None, None, "ta/agent_001", "ta/agent_002", "ta/agent_001", None, None]
    assert col(req, "request_id") == ["ta/1", "tb/1", "ta/2", "ta/3/1", "ta/4/1", "ta/3/2", "ta/5", "ta/6"]
    assert col(req, "turn") == [1, 1, 1, 1, 1, 1, 1, 2]  # ta/5 ends turn 1 (stop end_turn)
    assert col(req, "input_tokens") == [20000, 9000, 21000, 5000, 4000, 5500, 23000, 24000]
    assert col(req, "output_tokens") == [100, 10, 50, 20, 10, 30, 200, 80]
    assert col(req, "latency_s") == [2.0, 1.0, 1.0, 0.4, 0.3, 0.5, 4.0, 2.0]  # api_time
    assert col(req, "ttft_s") == [0.5, None, None, None, None, None, None, 0.4]
    # hash ids are per trace: trace 2's move by 2**32 so they never meet trace 1's
    assert col(req, "hash_ids")[:2] == [[1, 2, 3], [2**32 + 1, 2**32 + 2]]
    # two rejects of one file, told apart by their item, in the file's order
    assert list(zip(col(rej, "line"), col(rej, "item"), col(rej, "reason"))) == [
        (2, "requests[1]", "requests[1]: type x is not n, s or subagent"),
        (2, "requests[2]", "non-numeric input_tokens"), (3, None, "not valid JSON")]


def test_baseten_parquet(tmp_path):
    s, req, rej = ingest(SOURCES["baseten"], tmp_path)
    assert (s["format"], s["rows_read"], s["rows_kept"]) == ("baseten", 5, 3)
    assert s["origin"].startswith("2026-01-01T00:00:00")
    assert col(req, "arrival_s") == [0.0, 1.5, 2.5]
    assert col(req, "session_id") == ["x", "x", "y"]
    assert col(req, "input_tokens") == [100, 300, 50]
    assert col(req, "output_tokens") == [20, 0, 10]
    assert col(req, "canceled") == [False, True, False]
    assert col(req, "failed") == [False, False, False]  # a canceled request is not a failure
    assert col(req, "ttft_s") == [0.2, None, 0.1]
    assert col(req, "latency_s") == [1.5, 0.3, 0.8]
    assert col(req, "hash_ids") == [[1, 2], [1, 2, 3, 4, 5], [9]]
    assert sorted(zip(col(rej, "line"), col(rej, "reason"))) == [(4, "missing timestamp"), (5, "negative input_tokens")]


def test_bailian_keeps_turns_and_chat_links(tmp_path):
    s, req, _ = ingest(FIXTURES / "ingest" / "bailian.jsonl", tmp_path)
    assert col(req, "turn") == [1, 1, 2, 3]
    assert col(req, "request_id") == ["1", "2", "3", "4"]
    assert col(req, "parent_id") == [None, None, "1", "3"]  # parent_chat_id, -1 = root


@pytest.mark.parametrize("fmt", ["burstgpt_v1.csv", "azure2023.csv", "mooncake.jsonl"])
def test_older_formats_leave_the_agent_columns_null(tmp_path, fmt):
    _, req, _ = ingest(FIXTURES / "ingest" / fmt, tmp_path)
    assert all(req[c].null_count() == req.height for c in AGENT_COLUMNS)


@pytest.mark.parametrize("fmt", list(SOURCES))
def test_forced_format_through_the_cli(tmp_path, fmt):
    r = run_cli("ingest", str(SOURCES[fmt]), "--out", str(tmp_path / "o"), "--format", fmt, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["format"] == fmt


def test_a_forced_wrong_format_says_why(tmp_path):
    with pytest.raises(ServetraceError, match="no usable rows.*turns is not a list"):
        ingest_trace(SOURCES["tracelab"], tmp_path, ingest_settings("copilot", [], "auto"))


def test_a_directory_of_no_traces_is_refused(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_text("hello")
    with pytest.raises(ServetraceError, match="is a directory"):
        ingest_trace(tmp_path / "d", tmp_path / "o")


def test_cached_ingest_of_a_directory(tmp_path):
    first = ingest_trace(SOURCES["cc-traces"], tmp_path)
    again = ingest_trace(SOURCES["cc-traces"], tmp_path)
    assert (first["cached"], again["cached"]) == (False, True)
    assert again["sha256"] == first["sha256"]


def test_one_cc_trace_file_is_detected(tmp_path):
    s, req, _ = ingest(SOURCES["cc-traces"] / "a.json", tmp_path)
    assert (s["format"], s["rows_read"], s["rows_kept"]) == ("cc-traces", 7, 7)
    assert set(col(req, "session_id")) == {"ta"}


def test_over_long_agent_records_keep_64_ki_and_mark_the_cut(tmp_path):
    """A refused agent record keeps its first 65,536 characters and a marker with its full length,
    as the other formats' rejects: a call (Copilot), a line that is not JSON, a cc-traces file."""
    pad = "y" * 100_000
    call = {"message_id": "m1", "timestamp": "2026-06-01T10:00:00.000Z", "duration_ms": 1000, "model": pad,
            "result": "Success", "tokens": {"prompt": "many", "completion": 5, "cached": 0}}
    good = {**call, "message_id": "m2", "model": "A", "tokens": {"prompt": 10, "completion": 5, "cached": 0}}
    lines = [json.dumps({"session_id": "s1", "turns": [{"llm_calls": [call, good], "tool_batches": []}]}),
             '{"session_id": "s2", "turns": ' + pad]
    (tmp_path / "c.jsonl").write_text("\n".join(lines) + "\n")
    ingest_trace(tmp_path / "c.jsonl", tmp_path / "o", ingest_settings("copilot", [], "auto"))
    rejects = pl.read_parquet(tmp_path / "o" / "rejects.parquet").sort("line")
    assert rejects["line"].to_list() == [1, 2]
    first, second = rejects["record"].to_list()
    assert first.startswith('{"message_id":"m1"') and first.endswith(" characters in all]")
    assert len(first) == 65_536 + len(f" [cut: {int(first.rsplit(' ', 4)[1])} characters in all]")
    assert int(first.rsplit(" ", 4)[1]) > 100_000  # the whole call's JSON (its model name alone is 100,000)
    assert second == lines[1][:65_536] + f" [cut: {len(lines[1])} characters in all]"
    d = tmp_path / "cc"
    d.mkdir()
    bad = '{"id": "t1", "requests": [' + pad  # not JSON: the file's text is the record
    (d / "a.json").write_text(bad)
    (d / "b.json").write_text(json.dumps({"id": "t2", "requests": [{"t": 0, "type": "n", "model": "m", "in": 5,
                                                                     "out": 1, "hash_ids": [1], "api_time": 1}]}))
    ingest_trace(d, tmp_path / "o2", ingest_settings("cc-traces", [], "auto"))
    rec = pl.read_parquet(tmp_path / "o2" / "rejects.parquet")["record"][0]
    whole = f"{d / 'a.json'}: {bad}"
    assert rec == whole[:65_536] + f" [cut: {len(whole)} characters in all]"
