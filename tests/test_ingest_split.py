"""ingest/agentic/split.py: a trace file's `requests` array split by bytes into pieces that each
read as the trace object with a run of its entries, whatever falls on a block edge (strings
holding quotes, backslashes, brackets and commas), pretty-printed or not; a file that is no
object with a `requests` array is not split."""

from __future__ import annotations

import json

import pytest

from servetrace.ingest.agentic import split

TRICKY = 'a "quoted" \\ back\\\\slash\\\\\\" , [bracket] {brace} "requests": ['


def _trace(n: int) -> dict:
    reqs = [{"t": i, "type": "n", "in": 5, "note": TRICKY * (i % 3), "hash_ids": [1, 2, i]} for i in range(n)]
    reqs.insert(5, {"type": "subagent", "agent_id": "x", "requests": [{"t": 1, "type": "n"}, {"t": 2, "type": "n"}]})
    return {"id": "tr", "models": ["a", "b"], "note": TRICKY, "block_size": 64, "requests": reqs, "tail": {"k": [1, 2]}}


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("block", [7, 64, 1000])
def test_pieces_hold_every_entry_once_in_order(tmp_path, monkeypatch, indent, block):
    monkeypatch.setattr(split, "BLOCK", block)  # many block edges, inside strings and escapes too
    trace = _trace(120)
    path = tmp_path / "t.json"
    path.write_text(json.dumps(trace, indent=indent))
    lay = split.layout(path)
    assert lay is not None and len(lay.starts) == len(trace["requests"])
    runs = split.pieces(lay, 2000)
    assert len(runs) > 5 and runs[0][0] == 0 and runs[-1][1] == len(trace["requests"])
    assert all(a < b == c for (a, b), (c, _) in zip(runs, runs[1:]))
    got = []
    for k, (a, b) in enumerate(runs):
        split.write_piece(path, lay, a, b, tmp_path / f"p{k}.json")
        piece = json.loads((tmp_path / f"p{k}.json").read_text())
        assert {key: v for key, v in piece.items() if key != "requests"} == {
            key: v for key, v in trace.items() if key != "requests"}
        got += piece["requests"]
    assert got == trace["requests"]


@pytest.mark.parametrize("text", ['[1, 2, 3]', '{"id": "x", "requests": [1, 2', '{"id": "x"}', '', '  ',
                                  '{"id": "x", "other": [1], "note": "\\"requests\\": [1]"}'])
def test_what_is_no_trace_object_with_requests_is_not_split(tmp_path, text):
    (tmp_path / "t.json").write_text(text)
    assert split.layout(tmp_path / "t.json") is None


def test_an_empty_requests_array_gives_no_piece(tmp_path):
    (tmp_path / "t.json").write_text('{"id": "x", "requests": []}')
    lay = split.layout(tmp_path / "t.json")
    assert lay is not None and len(lay.starts) == 0 and split.pieces(lay, 10) == []
