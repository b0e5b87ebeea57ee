"""Property tests for the agentic readers: random values anywhere in a session, round or trace
never cause a traceback and never lose a call (rows read = kept + rejected, both files agree)."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servetrace.errors import ServetraceError
from servetrace.ingest import ingest_trace

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**40), st.floats(allow_nan=False, allow_infinity=False),
                   st.sampled_from(["", "x", "2026-06-01T00:00:01Z", "NaN", "-1", "1e3"]))
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                     max_leaves=6)


def _ingest(path: Path) -> None:
    out = Path(tempfile.mkdtemp(dir=path.parent if path.is_file() else path.parent))
    try:
        s = ingest_trace(path, out)
    except ServetraceError as exc:
        assert "\n" not in str(exc).strip()
        return
    assert s["rows_read"] == s["rows_kept"] + s["rows_rejected"]
    assert pl.read_parquet(out / "requests.parquet").height == s["rows_kept"]
    assert pl.read_parquet(out / "rejects.parquet").height == s["rows_rejected"]


CALL_KEYS = ["message_id", "timestamp", "duration_ms", "model", "result", "tokens"]


@st.composite
def copilot_call(draw):
    call = {"message_id": "m", "timestamp": "2026-06-01T00:00:01Z", "duration_ms": 10.0, "model": "Model A",
            "result": "Success", "tokens": {"prompt": 5, "completion": 2, "cached": 1}}
    for key in draw(st.lists(st.sampled_from(CALL_KEYS), max_size=2)):
        call[key] = draw(VALUE)
    if draw(st.booleans()):
        call["tokens"] = {k: draw(st.one_of(SCALAR, st.just(3))) for k in ("prompt", "completion", "cached")}
    return call


@SETTINGS
@given(sessions=st.lists(st.one_of(
    st.builds(lambda calls: {"session_id": "s", "date": "2026-06-01", "turns": [{"turn_id": "t", "llm_calls": calls}]},
              st.lists(copilot_call(), max_size=3)),
    st.builds(lambda v: {"session_id": "s", "turns": v}, VALUE),
    st.sampled_from(["not json", "[1]", "{}"])), min_size=1, max_size=6))
def test_random_copilot_sessions(tmp_path_factory, sessions):
    path = tmp_path_factory.mktemp("copilot") / "s.jsonl.gz"
    # the first line decides the format: keep a well-formed session there
    lines = [json.dumps({"session_id": "s0", "turns": []})] + [s if isinstance(s, str) else json.dumps(s) for s in sessions]
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    _ingest(path)


@SETTINGS
@given(entries=st.lists(st.one_of(
    st.fixed_dictionaries({"t": st.one_of(SCALAR, st.floats(0, 100)), "type": st.sampled_from(["n", "s", "x"]),
                           "in": st.one_of(SCALAR, st.integers(0, 10**6)), "out": SCALAR, "hash_ids": VALUE,
                           "api_time": SCALAR}),
    st.fixed_dictionaries({"t": SCALAR, "type": st.just("subagent"), "agent_id": SCALAR, "requests": VALUE}),
    VALUE), max_size=6), junk=st.booleans())
def test_random_cc_traces(tmp_path_factory, entries, junk):
    d = tmp_path_factory.mktemp("cc") / "traces"
    d.mkdir()
    (d / "a.json").write_text(json.dumps({"id": "a", "block_size": 64, "requests": entries}))
    if junk:
        (d / "b.json").write_text("{\"id\": 1, \"requests\": 5}")
    _ingest(d)


@SETTINGS
@given(rounds=st.lists(st.fixed_dictionaries({
    "session_id": SCALAR, "round_index": SCALAR, "input_tokens_total": SCALAR, "prefix_tokens": SCALAR,
    "newly_append_tokens": SCALAR, "output_tokens": SCALAR,
    "timing_events": st.one_of(VALUE, st.lists(st.fixed_dictionaries({
        "event_type": st.sampled_from(["user_message", "tool_result", "text", "x"]),
        "timestamp": st.one_of(SCALAR, st.just("2026-06-02T00:00:00Z"))}), max_size=3))}), min_size=1, max_size=6))
def test_random_tracelab_rounds(tmp_path_factory, rounds):
    path = tmp_path_factory.mktemp("tl") / "t.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rounds) + "\n")
    _ingest(path)
