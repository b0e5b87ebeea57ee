"""Property tests: random CSV / JSONL never cause a traceback and never lose a row; parsers round-trip.

Each example runs a real ingest (DuckDB), so the example counts are modest; the strategies aim at
the edges (quotes, separators, blank lines, huge and negative numbers, NaN, unicode, wrong types).
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servetrace.errors import ServetraceError
from servetrace.ingest import ingest_trace
from servetrace.schema import HASH_IDS

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HEADER = ["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"]

# Field values that stress the parser: fine numbers, edge numbers, junk, separators (no quotes,
# no line breaks: those legitimately join lines into one record, tested in the corpus).
NUMBERS = st.one_of(st.integers(-5, 10**6).map(str), st.integers(2**31 - 2, 2**40).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["", " ", "nan", "inf", "-0", "1e3", "0x10", "1,5", "NULL", "Timestamp"]))
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"'), max_size=12)
FIELD = st.one_of(NUMBERS, TEXT)
CSV_LINE = st.lists(FIELD, min_size=0, max_size=8).map(",".join)


def _ingest(path: Path) -> tuple[dict | None, str | None]:
    out = Path(tempfile.mkdtemp(dir=path.parent))
    try:
        summary = ingest_trace(path, out)
    except ServetraceError as exc:
        assert "\n" not in str(exc).strip(), "one-line message"
        return None, str(exc)
    assert summary["rows_read"] == summary["rows_kept"] + summary["rows_rejected"]
    assert pl.read_parquet(out / "requests.parquet").height == summary["rows_kept"]
    assert pl.read_parquet(out / "rejects.parquet").height == summary["rows_rejected"]
    return summary, None


@SETTINGS
@given(lines=st.lists(CSV_LINE, max_size=25), blank_every=st.integers(0, 5), crlf=st.booleans())
def test_random_csv_no_traceback_no_lost_row(tmp_path_factory, lines, blank_every, crlf):
    tmp = tmp_path_factory.mktemp("csv")
    body = list(lines)
    if blank_every:
        body = [x for i, line in enumerate(lines) for x in ([line, ""] if i % blank_every == 0 else [line])]
    nl = "\r\n" if crlf else "\n"
    path = tmp / "t.csv"
    path.write_bytes((nl.join([",".join(HEADER), *body]) + nl).encode("utf-8"))
    summary, error = _ingest(path)
    if summary is not None:
        # Every non-blank line after the header is one record read: none is dropped silently.
        assert summary["rows_read"] == sum(1 for line in body if line.strip(" "))
    else:
        assert error and str(path) in error


JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10, 10**12), st.floats(allow_nan=False), TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6)
RECORD = st.fixed_dictionaries(
    {"timestamp": st.one_of(st.integers(0, 10**9), JSON_VALUE),
     "input_length": st.one_of(st.integers(0, 10**6), JSON_VALUE),
     "output_length": st.one_of(st.integers(0, 10**4), JSON_VALUE)},
    optional={"hash_ids": st.one_of(st.lists(st.integers(0, 10**6), max_size=5), JSON_VALUE)})
JSONL_LINE = st.one_of(RECORD.map(json.dumps), RECORD.map(json.dumps), TEXT, st.just("{"), st.just("[1]"),
                       st.just(""), JSON_VALUE.map(json.dumps))


@SETTINGS
@given(first=RECORD, lines=st.lists(JSONL_LINE, max_size=25))
def test_random_jsonl_no_traceback_no_lost_row(tmp_path_factory, first, lines):
    tmp = tmp_path_factory.mktemp("jsonl")
    path = tmp / "t.jsonl"
    text = "\n".join([json.dumps({"timestamp": 0, "input_length": 1, "output_length": 1, **first}), *lines]) + "\n"
    path.write_text(text, encoding="utf-8")
    summary, error = _ingest(path)
    if summary is not None:
        assert summary["rows_read"] == 1 + sum(1 for line in lines if line.strip())
    else:
        assert error and str(path) in error


# Round trips: what is written by a well-behaved producer comes back exactly.

# Separators other than the plain space: DuckDB's trim and Python's strip disagree on a few.
MODEL = st.text(st.characters(exclude_categories=("Cs", "Cc", "Z"), include_characters=" "), max_size=20)
ROW = st.tuples(st.integers(0, 10**7), MODEL, st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1),
                st.sampled_from(["Conversation log", "API log"]))


@SETTINGS
@given(rows=st.lists(ROW, min_size=1, max_size=40))
def test_burstgpt_csv_round_trip(tmp_path_factory, rows):
    tmp = tmp_path_factory.mktemp("rt")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows((t, m, i, o, i + o, k) for t, m, i, o, k in rows)
    path = tmp / "b.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    summary, error = _ingest(path)
    assert error is None and summary["rows_kept"] == len(rows)
    req = pl.read_parquet(Path(summary["requests"]))
    order = sorted(range(len(rows)), key=lambda j: rows[j][0])  # stable: ties keep file order
    shift = summary["origin_shift_s"]
    assert req["arrival_s"].to_list() == [rows[j][0] - shift for j in order]
    assert req["model"].to_list() == [(rows[j][1].strip(" ") or None) for j in order]
    assert req["input_tokens"].to_list() == [rows[j][2] for j in order]
    assert req["output_tokens"].to_list() == [rows[j][3] for j in order]
    assert req["failed"].to_list() == [rows[j][3] == 0 for j in order]
    assert req["service"].to_list() == [rows[j][4].split()[0].lower() for j in order]


MOONCAKE = st.fixed_dictionaries({"timestamp": st.integers(0, 10**10), "input_length": st.integers(0, 10**6),
                                  "output_length": st.integers(0, 10**5),
                                  "hash_ids": st.lists(st.integers(0, 2**62), max_size=6)})


@SETTINGS
@given(records=st.lists(MOONCAKE, min_size=1, max_size=40))
def test_mooncake_jsonl_round_trip(tmp_path_factory, records):
    tmp = tmp_path_factory.mktemp("mc")
    path = tmp / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    summary, error = _ingest(path)
    assert error is None and summary["format"] == "mooncake" and summary["rows_kept"] == len(records)
    req = pl.read_parquet(Path(summary["requests"]))
    ordered = sorted(records, key=lambda r: r["timestamp"])
    np.testing.assert_allclose(req["arrival_s"].to_numpy(), [r["timestamp"] / 1000 for r in ordered], rtol=1e-15)
    assert req["input_tokens"].to_list() == [r["input_length"] for r in ordered]
    assert req[HASH_IDS].to_list() == [r["hash_ids"] for r in ordered]


PMF = st.dictionaries(st.integers(0, 10**6), st.floats(1e-6, 1.0), min_size=1, max_size=30)


@SETTINGS
@given(pmf=PMF)
def test_servegen_pmf_literal_round_trip(pmf):
    """Our ServeGen writer's dict literal reads back, without eval, as the same distribution."""
    servegen = pytest.importorskip("servetrace.exports.servegen")
    from servetrace.bundle.servegen_import import parse_pmf_literal

    values = np.array(sorted(pmf), dtype=float)
    probs = np.array([pmf[int(v)] for v in values])
    keys, parsed, int_keys = parse_pmf_literal(servegen.pmf_literal({"values": values, "probs": probs},
                                                                    "input_tokens"), "pmf")
    assert int_keys and keys.tolist() == values.tolist()
    np.testing.assert_allclose(parsed, probs / probs.sum(), rtol=1e-15)
    assert math.isclose(parsed.sum(), 1.0, rel_tol=1e-9)
