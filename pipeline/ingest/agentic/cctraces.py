"""Weka / SemiAnalysis cc-traces (kv-cache-tester): a directory of JSON files, one trace each.

Schema: callanjfox/kv-cache-tester docs/trace_replay_tester.md ("Trace Format", "Timing
Strategies", "Sub-Agent Handling") and AIPerf 0.13's models of it
(aiperf/dataset/loader/weka_trace_models.py: WekaTrace, WekaNormalRequest, WekaStreamingRequest,
WekaSubagentEntry). A trace is one session: `requests[]` interleaves calls (`type` n / s) and
subagent markers (`type: subagent`, with the subagent's own `requests[]`). `t` counts seconds
from the conversation's start; no trace says when its conversation started, so every session
starts at 0 on its own clock.
"""

from __future__ import annotations

from pathlib import Path

from servetrace.ingest.agentic.records import one_each, typed
from servetrace.ingest.canonical import clipped
from servetrace.ingest.queries import statement

NAME = "cc-traces"
CONTAINER = "dir"
KEYS = ("id", "block_size", "requests")
TIME_UNIT = "s"
ORIGIN = "none"
FAILED = "false"
HASH_IDS = True
COLUMNS = ("arrival_s", "session_id", "model", "input_tokens", "output_tokens", "latency_s", "ttft_s", "turn",
           "request_id", "parent_id", "call_kind", "hash_ids")
ID_STRIDE = 1 << 32  # hash ids are scoped per trace (hash_id_scope "local"): trace n's ids move by n x this


def looks_like(path: Path) -> bool:
    """A directory of .json files is read as cc-traces (a file that is not a trace is a reject)."""
    return any(path.glob("*.json"))


def trace_files(path: Path) -> list[Path]:
    """The trace files of `path`, in name order: a directory's `.json` files (names starting with
    `_` or `.` too), or the one file. Both engines read this list."""
    return sorted(path.glob("*.json")) if path.is_dir() else [path]


def one_trace_file(path: Path) -> bool:
    """A single (pretty-printed) trace object: a .json file opening with `{` and naming the trace keys."""
    if path.suffix != ".json" or not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(1 << 16).decode("utf-8", "replace")
    return head.lstrip().startswith("{") and all(f'"{k}"' in head for k in KEYS)


CALL = ('"t": "VARCHAR", "type": "VARCHAR", "model": "VARCHAR", "in": "VARCHAR", "out": "VARCHAR", '
        '"hash_ids": "VARCHAR", "api_time": "VARCHAR", "ttft": "VARCHAR", "stop": "VARCHAR"')
TRACE = f'{{"id": "VARCHAR", "requests": [{{{CALL}, "agent_id": "VARCHAR", "requests": [{{{CALL}}}]}}]}}'


def select_sql(records: str, base: int = 0, turns: int = 0) -> str:
    """One row per call (and per subagent call) of the traces in `records` (records.json_file_records);
    for a piece of a split trace file (ingest/agentic/split.py), `base` entries of its `requests`
    come before the piece's and `turns` user turns ended in them."""
    return statement("agentic/cctraces", traces=typed(records, TRACE, "requests"), requests=one_each("s.requests"),
                     positions=one_each(f"range({int(base)} + 1, {int(base)} + len(s.requests) + 1)"),
                     call_record=clipped("call_text"), entry_record=clipped("entry_text"),
                     id_stride=ID_STRIDE, turns=int(turns))


def turns_ended_sql(records: str) -> str:
    """The number of user turns that end in the traces of `records`."""
    return statement("agentic/cctraces_turns_ended", traces=typed(records, TRACE, "requests"))
