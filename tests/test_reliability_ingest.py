"""What an adversarial user broke in ingest: each class, with cases built here (not the user's
files). Rows read = rows kept + rows rejected in every ingested case, checked by the CLI summary."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import FIXTURES, run_cli


def _ingest(path: Path, out: Path, *args: str) -> dict:
    proc = run_cli("ingest", path, "--out", out, "--json", *args)
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert s["rows_read"] == s["rows_kept"] + s["rows_rejected"]
    return s


def _refused(path: Path, out: Path, *words: str) -> str:
    proc = run_cli("ingest", path, "--out", out)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr
    return proc.stderr


def _jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def _rec(t, **extra) -> dict:
    return {"timestamp": t, "input_length": 10 + t, "output_length": 3, **extra}


# --- Data loss 2: optional JSONL fields read wherever they first appear -------------------------

@pytest.mark.parametrize("field,value", [("hash_ids", [7, 8]), ("session_id", "s1")])
def test_jsonl_optional_field_absent_from_the_first_record_is_kept(tmp_path, field, value):
    records = [_rec(t) for t in range(50)] + [_rec(50, **{field: value})]
    _ingest(_jsonl(tmp_path / "t.jsonl", records), tmp_path / "o")
    got = pq.read_table(tmp_path / "o" / "requests.parquet").column(field).to_pylist()
    assert got[:50] == [None] * 50 and got[50] == value


def test_bailian_parent_link_absent_from_the_first_record_makes_sessions(tmp_path):
    rows = [{"chat_id": "1", "timestamp": 1.0, "input_length": 5, "output_length": 2},
            {"chat_id": "2", "parent_chat_id": "1", "timestamp": 2.0, "input_length": 9, "output_length": 2},
            {"chat_id": "3", "parent_chat_id": "-1", "timestamp": 3.0, "input_length": 5, "output_length": 2}]
    _ingest(_jsonl(tmp_path / "b.jsonl", rows), tmp_path / "o")
    sessions = pq.read_table(tmp_path / "o" / "requests.parquet").column("session_id").to_pylist()
    assert sessions[0] == sessions[1] != sessions[2]


# --- Valid input 2 / Crash 8: the first JSONL record is a record like any other ----------------

@pytest.mark.parametrize("first,reason", [
    ({"timestamp": 0, "output_length": 3}, "missing input_tokens"),
    ("{timestamp: 0, input_length: 10}", "not valid JSON"),
    ('{"a":' * 5000 + "1" + "}" * 5000, "missing timestamp"),  # nested deeper than Python's parser goes
])
def test_jsonl_first_record_broken_costs_one_reject(tmp_path, first, reason):
    s = _ingest(_jsonl(tmp_path / "t.jsonl", [first] + [_rec(t) for t in range(1, 6)]), tmp_path / "o")
    assert (s["rows_read"], s["rows_kept"]) == (6, 5) and s["reject_reasons"] == {reason: 1}, s
    assert pq.read_table(tmp_path / "o" / "rejects.parquet").column("line").to_pylist() == [1]


# --- Data loss 3: a malformed hash_ids refuses its row --------------------------------------

def test_malformed_hash_ids_reject_the_row_not_coerce_it(tmp_path):
    bad = [[1.5, 2.7], ["a"], [[1]], [2**64 - 1], "12", {"x": 1}]
    records = [_rec(t, hash_ids=h) for t, h in enumerate(bad)] + [_rec(10, hash_ids=[1, 2**63 - 1]), _rec(11)]
    s = _ingest(_jsonl(tmp_path / "t.jsonl", records), tmp_path / "o")
    assert s["rows_kept"] == 2 and s["reject_reasons"] == {"hash_ids not a list of integers": len(bad)}
    assert pq.read_table(tmp_path / "o" / "requests.parquet").column("hash_ids").to_pylist() == [[1, 2**63 - 1], None]


def test_parquet_float_hash_ids_are_not_rounded(tmp_path):
    table = pa.table({"timestamp": [1.0, 2.0, 3.0], "input_tokens": [5, 6, 7], "output_tokens": [1, 1, 1],
                      "hash_ids": pa.array([[1.5, 2.7], [3.0, 4.0], None], pa.list_(pa.float64()))})
    pq.write_table(table, tmp_path / "t.parquet")
    s = _ingest(tmp_path / "t.parquet", tmp_path / "o")
    assert s["reject_reasons"] == {"hash_ids not a list of integers": 1}
    assert pq.read_table(tmp_path / "o" / "requests.parquet").column("hash_ids").to_pylist() == [[3, 4], None]


# --- Crash 1: timestamps past the year 9999 ----------------------------------------------------

@pytest.mark.parametrize("header,row,unit", [
    ("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type", "1700000000000,m,1,2,3,API log", "ms"),
    ("timestamp,input_tokens,output_tokens", "1700000000000000", "us"),
])
def test_timestamps_past_year_9999_name_the_unit(tmp_path, header, row, unit):
    line = row if "," in row else f"{row},5,6"
    (tmp_path / "t.csv").write_text(f"{header}\n{line}\n{line}\n")
    args = ("--format", "generic", "--time-unit", "s") if unit == "us" else ()
    proc = run_cli("ingest", tmp_path / "t.csv", "--out", tmp_path / "o", *args)
    assert proc.returncode == 2 and "year 9999" in proc.stderr and f"--time-unit {unit}" in proc.stderr, proc.stderr


# --- Crash 5 / Valid input 7: inputs that are not regular files ------------------------------

def test_fifo_is_refused_at_once_not_hung(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    _refused(tmp_path / "pipe", tmp_path / "o", "not a regular file")


def test_symlink_loop_is_named_as_such(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    _refused(tmp_path / "a", tmp_path / "o", "symbolic links")


# --- Valid input 1: a quoted newline in a CSV with short rows --------------------------------

def test_csv_with_a_quoted_newline_is_read(tmp_path):
    (tmp_path / "t.csv").write_text('timestamp,input_tokens,output_tokens,model\n1,10,5,a\n2,11,6,"b\nc"\n'
                                    '3,12,7\n4,13,8,d\n')
    s = _ingest(tmp_path / "t.csv", tmp_path / "o")
    assert s["rows_kept"] == 4
    assert pq.read_table(tmp_path / "o" / "requests.parquet").column("model").to_pylist() == ["a", "b\nc", None, "d"]


# --- Valid input 4: UTF-16 is named ----------------------------------------------------------

@pytest.mark.parametrize("encoding,name", [("utf-16", "UTF-16-LE"), ("utf-16-be", "UTF-16-BE")])
def test_utf16_csv_names_its_encoding(tmp_path, encoding, name):
    text = "\ufefftimestamp,input_tokens,output_tokens\n1,10,5\n" if encoding.endswith("be") else \
        "timestamp,input_tokens,output_tokens\n1,10,5\n"
    (tmp_path / "t.csv").write_bytes(text.encode(encoding))
    _refused(tmp_path / "t.csv", tmp_path / "o", name, "iconv")


# --- Valid input 6: one NUL rule for the head and the rest ------------------------------------

@pytest.mark.parametrize("at_row", [0, 3000])
def test_nul_byte_refuses_its_record_wherever_it_is(tmp_path, at_row):
    rows = [f"{t},10,5,m" for t in range(4000)]
    rows[at_row] = f"{at_row},10,5,a\x00b"
    (tmp_path / "t.csv").write_text("timestamp,input_tokens,output_tokens,model\n" + "\n".join(rows) + "\n")
    s = _ingest(tmp_path / "t.csv", tmp_path / "o")
    assert s["rows_rejected"] == 1 and s["reject_reasons"] == {"NUL byte in model": 1}
    assert pq.read_table(tmp_path / "o" / "rejects.parquet").column("line").to_pylist() == [at_row + 2]


# --- Data loss 8 (resolution): one row or all-equal timestamps have no grid --------------------

@pytest.mark.parametrize("times", [[5], [1, 1], [7, 7, 7, 7]])
def test_resolution_of_one_instant_is_unknown_not_a_minute(tmp_path, times):
    from servetrace.characterization import characterize

    (tmp_path / "t.csv").write_text("timestamp,input_tokens,output_tokens\n" + "".join(f"{t},3,4\n" for t in times))
    characterize(tmp_path / "t.csv", tmp_path / "o", quiet=True)
    quality = json.loads((tmp_path / "o" / "findings.json").read_text())["quality"]
    assert quality["resolution_s"] is None and not quality["derounded"]


def test_resolution_is_found_once_by_the_quality_rule(tmp_path):
    """Mooncake's arrivals on a 3 s grid: the quality stage finds it; ingest reports no grid of its own."""
    from servetrace.characterization import characterize

    characterize(FIXTURES / "ingest" / "mooncake.jsonl", tmp_path / "o", quiet=True)
    doc = json.loads((tmp_path / "o" / "findings.json").read_text())
    assert doc["quality"]["resolution_s"] == 3.0 and "ingest_resolution_s" not in doc["quality"]
    assert "resolution_s" not in _ingest(FIXTURES / "ingest" / "mooncake.jsonl", tmp_path / "i")


# --- Data loss 5: two --map entries naming one target ------------------------------------------

def test_two_maps_to_one_target_are_refused(tmp_path):
    (tmp_path / "t.csv").write_text("a,b,c,d\n1,2,3,4\n")
    proc = run_cli("ingest", tmp_path / "t.csv", "--out", tmp_path / "o", "--map", "a=arrival_s",
                   "--map", "b=input_tokens", "--map", "c=input_tokens", "--map", "d=output_tokens")
    assert proc.returncode == 2 and "already the target" in proc.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("compress", [False, True])
def test_reject_line_numbers_count_blank_lines_and_quoted_newlines(tmp_path, compress):
    """rejects.parquet names the line a text editor shows: blank lines (anywhere, inside quotes
    too), records spanning quoted newlines and records the reader could not split all count."""
    import random

    import polars as pl

    rng = random.Random(7)
    lines, bad = ["arrival_s,input_tokens,output_tokens,model"], []
    for i in range(400):
        lines += [""] * rng.choice([0, 0, 0, 1, 3])
        kind = rng.choice(["ok"] * 6 + ["quoted", "escaped", "text", "split"])
        model = {"quoted": '"two\n\nlines ""and"" more"', "escaped": '"say ""hi"""'}.get(kind, "m")
        tokens = "x" if kind == "text" else str(10 + i)
        extra = ",9,9" if kind == "split" else ""
        if kind in ("text", "split"):
            bad.append(sum(1 + x.count("\n") for x in lines) + 1)
        lines.append(f"{i},{tokens},5,{model}{extra}")
    text = "\n".join(lines) + "\n"
    path = tmp_path / ("t.csv.gz" if compress else "t.csv")
    path.write_bytes(gzip.compress(text.encode()) if compress else text.encode())
    s = _ingest(path, tmp_path / "o")
    assert s["rows_rejected"] == len(bad)
    rejects = pl.read_parquet(tmp_path / "o" / "rejects.parquet")
    assert sorted(rejects["line"].to_list()) == bad
    physical = text.split("\n")
    for line, record in zip(rejects["line"].to_list(), rejects["record"].to_list()):
        assert physical[line - 1].split(",")[:2] == record.split(",")[:2]


QUOTE_KINDS = {  # model field -> whether DuckDB's reader refuses the record
    'gpt"4': False,  # a quote inside an unquoted field is a character (an odd count on the line)
    'x "y': False, '  "two spaces': False,  # not at a field's start: characters too
    ' "one\nspace"': False,  # one space before the quote: a quoted field, over two lines
    '"re" "opened\nhere"': False,  # spaces and a quote after the close open it again
    '"ends""\n"': False,  # an escaped quote at a line's end: still inside
    '"closed"after': True,  # text after a closing quote: unreadable (unquoted value)
    '"q"x"y': True,  # the same, its later quotes characters
}


def test_reject_line_numbers_past_quotes_inside_fields(tmp_path):
    """A quote opens a field only where a field starts (ingest/quotes.py): the line numbers of
    rejects after `gpt"4`, a reopened or escaped quote and text after a closing quote are the
    lines an editor shows, and the kept values are those DuckDB's reader reads (trimmed)."""
    import random

    import polars as pl

    rng = random.Random(11)
    lines, bad, kept = ["arrival_s,input_tokens,output_tokens,model"], [], {}
    for i in range(300):
        lines += [""] * rng.choice([0, 0, 0, 1])
        model = rng.choice(["m"] * 4 + list(QUOTE_KINDS))
        text = rng.random() < 0.2
        if text or QUOTE_KINDS.get(model):
            bad.append(sum(1 + x.count("\n") for x in lines) + 1)
        elif model != "m":
            kept[i] = model
        lines.append(f"{i},{'x' if text else 10 + i},5,{model}")
    body = "\n".join(lines) + "\n"
    path = tmp_path / "t.csv"
    path.write_text(body)
    s = _ingest(path, tmp_path / "o")
    assert s["rows_read"] == 300 and s["rows_rejected"] == len(bad)
    rejects = pl.read_parquet(tmp_path / "o" / "rejects.parquet")
    assert sorted(rejects["line"].to_list()) == bad
    physical = body.split("\n")
    for line, record in zip(rejects["line"].to_list(), rejects["record"].to_list()):
        assert physical[line - 1].split(",")[:2] == record.split(",")[:2]
    rows = pl.read_parquet(tmp_path / "o" / "requests.parquet").filter(pl.col("model") != "m")
    values = {'gpt"4': 'gpt"4', 'x "y': 'x "y', '  "two spaces': '"two spaces', ' "one\nspace"': "one\nspace",
              '"re" "opened\nhere"': "re opened\nhere", '"ends""\n"': 'ends"\n'}
    assert dict(zip(rows["input_tokens"].to_list(), rows["model"].to_list())) == {
        10 + i: values[m] for i, m in kept.items()}


def test_quote_state_of_each_line_is_duckdbs(tmp_path):
    """The four line functions of ingest/quotes.py, composed over random lines of quotes, spaces,
    delimiters and letters, put every record where DuckDB's own reader puts it: each record it
    refuses (integer columns refuse every one with a letter) is a record of the model, at the
    model's line, with the text the model joins."""
    import random
    import re

    import duckdb

    from servetrace.ingest.quotes import quote_patterns

    pat = quote_patterns(",")
    opens, stays = re.compile(pat.opens), re.compile(pat.stays_open)
    rng = random.Random(5)
    checked = 0
    for n in range(400):
        lines = ["h1,h2,h3"] + ["".join(rng.choice('a" ,"b') for _ in range(rng.randint(1, 9)))
                                for _ in range(rng.randint(1, 8))]
        records, inside = [], False
        for j in lines:
            if inside:
                records[-1].append(j)
            else:
                records.append([j])
            inside = bool((stays if inside else opens).fullmatch(j))
        if inside:  # an open quote on the last line: DuckDB's reader drops or pads that record
            continue
        model, before = {}, 0  # DuckDB's line of each record -> its text
        for k, rec in enumerate(records[1:], 1):
            model[1 + sum(len(r) for r in records[:k]) - before] = "\n".join(rec)
            before += len(rec) - 1
        path = tmp_path / f"r{n}.csv"
        path.write_text("\n".join(lines) + "\n")
        con = duckdb.connect()
        con.execute(f"select * from read_csv('{path}', header=true, auto_detect=false, delim=',', quote='\"', "
                    "escape='\"', columns={'a': 'INTEGER', 'b': 'INTEGER', 'c': 'INTEGER'}, null_padding=true, "
                    "store_rejects=true, ignore_errors=true, parallel=false)").fetchall()
        got = {line: text.rstrip("\r\n") for line, text in con.execute("select line, csv_line from reject_errors").fetchall()}
        assert {line: model.get(line) for line in got} == got, lines
        assert {line for line, text in model.items() if re.search("[ab]", text)} <= set(got), lines
        checked += 1
    assert checked > 200


@pytest.mark.parametrize("name", ["t.csv.gz", "t.jsonl.gz"])
def test_gzip_with_trailing_zero_padding_is_read(tmp_path, name):
    """Zero bytes after the last gzip member (tape and block-device padding) are ignored, as
    `gzip -d` ignores them; the rows are those of the unpadded file, two members included."""
    import polars as pl

    rows = [(i, 10 + i, 3) for i in range(50)]
    if name.endswith("csv.gz"):
        text = "arrival_s,input_tokens,output_tokens\n" + "".join(f"{a},{i},{o}\n" for a, i, o in rows)
    else:
        text = "".join(json.dumps({"timestamp": a, "input_length": i, "output_length": o}) + "\n" for a, i, o in rows)
    cut = len(text) // 2
    members = gzip.compress(text[:cut].encode()) + gzip.compress(text[cut:].encode())
    (tmp_path / name).write_bytes(members + b"\0" * 3000)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / name).write_bytes(members)
    padded, plain = _ingest(tmp_path / name, tmp_path / "o"), _ingest(tmp_path / "plain" / name, tmp_path / "p")
    assert padded["rows_kept"] == plain["rows_kept"] == 50 and padded["rows_rejected"] == 0
    got = pl.read_parquet(tmp_path / "o" / "requests.parquet")
    assert got["input_tokens"].to_list() == [i for _, i, _ in rows]
    assert got.equals(pl.read_parquet(tmp_path / "p" / "requests.parquet"))
    assert not (tmp_path / "o" / ".spill").exists()
    _refused(_gz_garbage(tmp_path), tmp_path / "g", "truncated or corrupt gzip")


def _gz_garbage(tmp_path: Path) -> Path:
    """Not padding: bytes after the last member that are not zeros stay refused."""
    path = tmp_path / "garbage.csv.gz"
    path.write_bytes(gzip.compress(b"arrival_s,input_tokens,output_tokens\n1,2,3\n") + b"\0\0junk")
    return path


@pytest.mark.parametrize("name", ["long.csv", "long.jsonl"])
def test_over_long_rejected_record_keeps_64_ki_and_marks_the_cut(tmp_path, name):
    """A refused record keeps its first 65,536 characters (the reader's own 10,000-character cap
    on unreadable records is not the limit), then a marker with its full length; a short one is whole."""
    import polars as pl

    big = "y" * 100_000
    if name.endswith(".csv"):
        lines = ["arrival_s,input_tokens,output_tokens,model", "1,10,5,m", f"2,10,5,{big}", f"3,10,5,m,{big}",
                 f"4,x{big},5,m", "5,x,5,m"]
    else:
        lines = [json.dumps(_rec(1)), json.dumps(_rec(2, input_length="x", pad=big)), '{"timestamp": 3, ' + big,
                 json.dumps(_rec(4, input_length="x"))]
    (tmp_path / name).write_text("\n".join(lines) + "\n")
    _ingest(tmp_path / name, tmp_path / "o")
    rejects = pl.read_parquet(tmp_path / "o" / "rejects.parquet").sort("line")
    for line, record in zip(rejects["line"], rejects["record"]):
        source = lines[line - 1]
        if len(source) > 65_536:
            assert record == source[:65_536] + f" [cut: {len(source)} characters in all]"
        else:
            assert record == source
    assert rejects.height == len(lines) - (1 if name.endswith(".jsonl") else 2)


def test_bailian_chain_deeper_than_100k_turns_is_one_session(tmp_path):
    """A conversation of 120,000 turns (each chat the parent of the next) is one session; a cycle
    of chats, and a chat below it, never reach a root: a session each, as before."""
    n = 120_000
    rows = [json.dumps({"chat_id": i, "parent_chat_id": i - 1 if i > 1 else -1, "timestamp": i * 0.01,
                        "input_length": 10, "output_length": 2, "type": "text", "turn": i}) for i in range(1, n + 1)]
    rows += [json.dumps({"chat_id": c, "parent_chat_id": p, "timestamp": 1.0 + k, "input_length": 10,
                         "output_length": 2, "type": "text", "turn": 1})
             for k, (c, p) in enumerate([(n + 1, n + 2), (n + 2, n + 1), (n + 3, n + 1), (n + 4, -1)])]
    s = _ingest(_jsonl(tmp_path / "chain.jsonl", rows), tmp_path / "o")
    assert s["rows_kept"] == n + 4
    t = pq.read_table(tmp_path / "o" / "requests.parquet", columns=["request_id", "session_id"]).to_pylist()
    session = {r["request_id"]: r["session_id"] for r in t}
    assert {session[str(i)] for i in range(1, n + 1)} == {"1"}
    assert [session[str(c)] for c in range(n + 1, n + 5)] == [str(c) for c in range(n + 1, n + 5)]
