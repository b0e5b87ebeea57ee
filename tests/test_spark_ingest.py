"""`ingest --engine spark` (local Spark) lands a raw trace as DuckDB's ingest does: the same kept
rows (values), the same reject counts, reasons, lines and records, rows read = kept + rejected.

Each case is ingested by both engines and compared; one SparkSession serves the module.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install 'servetrace[spark]')")
if shutil.which("java") is None:
    pytest.skip("no Java runtime for Spark (.ci/run installs openjdk-17-jre-headless)", allow_module_level=True)

from pyspark.sql import SparkSession  # noqa: E402

from servetrace.ingest import ingest_trace  # noqa: E402
from servetrace.stages.engine import Engine  # noqa: E402
from tests.conftest import ROOT, run_cli  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "ingest"
AGENTIC = ROOT / "tests" / "fixtures" / "agentic"
AGENT_FORMATS = {"tracelab.jsonl": "tracelab", "copilot.jsonl.gz": "copilot", "baseten.parquet": "baseten",
                 "cctraces": "cc-traces"}
BAD = ROOT / "tests" / "bad_inputs"
SPARK = Engine("spark", "local[2]", {"spark.sql.shuffle.partitions": "2", "spark.sql.files.maxPartitionBytes": "128m",
                                     "spark.sql.files.openCostInBytes": "4m"})
HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
# One CSV with what the reader itself refuses or joins, so one Spark ingest covers them all: a
# quoted newline (two lines, one record), blank lines, bytes that are not UTF-8, a surplus empty
# field (passes, as in DuckDB) and a surplus field with a value (refused), escaped quotes, a line
# of spaces (a record), values the typed checks refuse.
MIXED = (HEADER.encode() + b'5,ChatGPT,472,18,490,Conversation log\n'
         b'6,"Chat\nGPT",100,20,120,API log\n'
         b'\n'
         b'7,mod\xe8le-\xff\xfe,100,20,120,API log\n'
         b'8,GPT-4,1,1,2,API log,\n'
         b'9,"GPT ""4""",1,1,2,API log\n'
         b'inf,GPT-4,1,1,2,API log\n'
         b'10,GPT-4,nan,1,2,API log\n'
         b'  \n'
         b'11,GPT-4,3,-1,2,API log\n'
         b'12,GPT-4,1,1,2,API log,x\n')


def bailian_links() -> bytes:
    """Bailian chats linked every way the session rule knows (SESSIONS: each chat's session)."""
    rows = []

    def add(chat, parent, t, ts=None):
        rows.append({"chat_id": chat, "parent_chat_id": parent, "timestamp": t if ts is None else ts,
                     "input_length": 100 + len(rows), "output_length": 10, "type": "text", "turn": 1,
                     "hash_ids": [len(rows)]})
    for k in range(40):  # a chain 40 deep: six pointer doublings
        add(1000 + k, 1000 + k - 1 if k else -1, 1.0 + k)
    for chat, parent, t in ((2000, "", 2.5), (2001, 2000, 3.5), (2002, 2000, 4.5), (2003, 2002, 5.5)):
        add(chat, parent, t)  # a tree below an empty link
    add(3000, 3000, 6.5)  # its own parent
    add(3001, 999999, 7.5)  # a parent the trace does not hold
    add(4001, 4002, 8.5), add(4002, 4001, 9.5), add(4003, 4002, 10.5)  # a cycle, and a chat below it
    add(5000, -1, 11.5, ts="never"), add(5001, 5000, 12.5)  # the parent is refused: its child is a root
    add(6000, -1, 13.5), add(6000, 1005, 14.5)  # one chat_id twice: a root link wins
    add(7000, None, 15.5), add(7001, 7000, 16.5)  # a null link
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


SESSIONS = {**{str(1000 + k): "1000" for k in range(40)}, **dict.fromkeys(("2000", "2001", "2002", "2003"), "2000"),
            "3000": "3000", "3001": "3001", "4001": "4001", "4002": "4002", "4003": "4003", "5001": "5001",
            "6000": "6000", "7000": "7000", "7001": "7000"}


def edges_csv() -> bytes:
    """Values each engine's casts read their own way unless told: boolean spellings, spaces and
    control characters around flags, numbers and text (Unicode spaces: DuckDB's trim strips them)."""
    nb = "\u00a0"
    rows = ["timestamp,input_tokens,output_tokens,failed,model"]
    flags = ["true", "FALSE", "t", "f", "1", "0", "yes", "no", "y", "n", " Yes ", "\ttrue", "true\t", "on", "2",
             f"{nb}true", "", "\x1ftrue"]
    rows += [f"{1_700_000_000 + i},{10 + i},20,{flag},gpt" for i, flag in enumerate(flags)]
    numbers = ["\t5", "5\t", " 5 ", "\x1f5", "5\x1f", f"{nb}5", "\x0b5"]
    rows += [f"{1_700_000_100 + i},{n},20,false,gpt" for i, n in enumerate(numbers)]
    models = [f"{nb}gpt{nb}", "\u3000gpt", "\tgpt\t", " gpt ", "\u2028gpt"]
    rows += [f"{1_700_000_200 + i},10,20,false,{m}" for i, m in enumerate(models)]
    return ("\n".join(rows) + "\n").encode()


def dup_keys_jsonl() -> bytes:
    """JSON lines with a key twice: DuckDB reads the first occurrence."""
    lines = ['{"timestamp": 1000, "input_length": 10, "output_length": 5, "hash_ids": [1]}',
             '{"timestamp": 2000, "timestamp": 1500, "input_length": 10, "output_length": 5, "hash_ids": [2]}',
             '{"timestamp": 3000, "input_length": 10, "input_length": 99, "output_length": 5, "hash_ids": [3]}',
             '{"timestamp": 4000, "input_length": 10, "output_length": 5, "hash_ids": [4], "hash_ids": [5, 6]}',
             '{"timestamp": 5000, "input_length": "x", "input_length": 12, "output_length": 5, "hash_ids": [7]}',
             '{"timestamp": 6000, "input_length": 12, "input_length": "x", "output_length": 5, "hash_ids": [8]}']
    return ("\n".join(lines) + "\n").encode()


def probe_order_csv() -> bytes:
    """The first 10,000 records in ms (6,000 of them over two lines: a quoted newline), then 10,000
    in s: the unit is guessed from the first 10,000 records, in file order."""
    rows = ["timestamp,input_tokens,output_tokens,model"]
    rows += [f"{(1_700_000_000 + i) * 1000},10,20,\"gpt\nx\"" for i in range(6000)]
    rows += [f"{(1_700_000_000 + i) * 1000},10,20,gpt" for i in range(6000, 10000)]
    rows += [f"{1_700_000_000 + i},10,20,gpt" for i in range(10000, 20000)]
    return ("\n".join(rows) + "\n").encode()


QUOTES = ['gpt"4', 'x "y', '  "two spaces', ' "one\nspace"', '"re" "opened\nhere"', '"ends""\n"', '"b"  ',
          '"closed"after', '"q"x"y', '"a long\n' + "plain line\n" * 200 + 'field"', "m", "m", "m"]
REFUSED = ('"closed"after', '"q"x"y')  # text after a closing quote: DuckDB's "unquoted value"


def quotes_csv() -> tuple[bytes, list[int]]:
    """Quotes that open a field and quotes that are text (ingest/quotes.py), over blocks of about
    1.5 kB (BLOCKS: each task reads one; a quoted newline crosses their edges), and the line of
    each rejected record, counted here."""
    import random

    rng = random.Random(3)
    lines, bad = ["Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"], []
    for i in range(400):
        lines += [""] * rng.choice([0, 0, 0, 1])
        model, text = rng.choice(QUOTES), rng.random() < 0.15
        if text or model in REFUSED:
            bad.append(sum(1 + x.count("\n") for x in lines) + 1)
        lines.append(f"{i},{model},{'x' if text else 10 + i},5,15,API log")
    return ("\n".join(lines) + "\n").encode(), bad


QUOTES_CSV, QUOTES_BAD = quotes_csv()
# Records the reader refuses for two faults at once, in either order along the record: both named,
# in the order of DuckDB's error types, with the first one's message (spark/raw.py's _named).
TWO_FAULTS = (HEADER.encode() + b'5,ChatGPT,472,18,490,Conversation log\n'
              b'6,"GPT"x,1,1,2,API log,extra\n'
              b'7,GPT,1,1,2,API log,"x"y\n'
              b'8,mod\xffle,1,1,2,API log,extra\n'
              b'9,"GPT"x,1,1,2,API log\n'
              b'10,GPT,1,1,2,API log,,z\n')
MANY = "Expected Number of Columns: 6 Found: 7"
TWO_FAULTS_REASONS = [f"too many columns; unquoted value ({MANY})", f"too many columns; unquoted value ({MANY})",
                      f"too many columns; invalid encoding ({MANY})",
                      "unquoted value (Value with unterminated quote found.)", f"too many columns ({MANY})"]
BLOCKS = {"spark.sql.files.maxPartitionBytes": "1500", "spark.sql.files.openCostInBytes": "0"}
GENERATED = {"quotes.csv": QUOTES_CSV, "mixed.csv": MIXED, "bailian_links.jsonl": bailian_links(), "edges.csv": edges_csv(),
             "dup_keys.jsonl": dup_keys_jsonl(), "probe_order.csv": probe_order_csv(),
             "two_faults.csv": TWO_FAULTS}
CASES = [
    FIXTURES / "rows_bad.csv",  # typed refusals, a repeated header, too many fields, out of order
    "mixed.csv",
    FIXTURES / "burstgpt_v3.csv",  # sessions, latency, failures
    FIXTURES / "azure2023.csv",  # datetime timestamps
    FIXTURES / "azure_mm2025.csv.gz",  # gzip, images
    BAD / "mooncake_bad_line.jsonl",  # not JSON, not an object, missing value, bad hash_ids
    BAD / "unterminated_quote.csv",  # the quote runs to the end of the file: one unreadable record
    "bailian_links.jsonl",  # parent-linked sessions (pointer jumping)
    "edges.csv",  # boolean spellings, spaces and control characters around values
    "dup_keys.jsonl",  # a JSON key twice
    "probe_order.csv",  # the time unit guessed from the first records in file order
    "quotes.csv",  # quotes inside fields, reopened, after one space; text after a closing quote
    "two_faults.csv",  # records the reader refuses for two reasons at once
    *(AGENTIC / name for name in AGENT_FORMATS),  # flattened by their readers, landed by Spark
]
NAMES = [Path(p).name for p in CASES]
SUMMARY = ("format", "rows_read", "rows_kept", "rows_rejected", "reject_reasons", "was_sorted", "time_unit", "origin",
           "origin_shift_s", "columns", "failure_rule", "compression", "sha256")


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    out = tmp_path_factory.mktemp("spark_ingest")
    for name, data in GENERATED.items():
        (out / name).write_bytes(data)
    done = {}
    for i, path in enumerate(out / p if isinstance(p, str) else p for p in CASES):
        duck = ingest_trace(path, out / f"{i}" / "duckdb")
        engine = Engine("spark", "local[2]", {**SPARK.spark_conf, **BLOCKS}) if path.name == "quotes.csv" else SPARK
        spark = ingest_trace(path, out / f"{i}" / "spark", engine=engine)
        done[path.name] = (duck, spark, out / f"{i}")
    return done


def _read(path) -> pl.DataFrame:
    return pl.from_arrow(pq.read_table(path))  # a file (DuckDB) or a directory of parts (Spark), in order


@pytest.mark.parametrize("case", NAMES)
def test_summary_equal(landed, case):
    duck, spark, _ = landed[case]
    assert {k: spark[k] for k in SUMMARY} == {k: duck[k] for k in SUMMARY}
    assert spark["rows_read"] == spark["rows_kept"] + spark["rows_rejected"]
    assert sum(spark["reject_reasons"].values()) == spark["rows_rejected"]


@pytest.mark.parametrize("case", NAMES)
def test_kept_rows_equal(landed, case):
    _, spark, out = landed[case]
    a, b = _read(out / "duckdb" / "requests.parquet"), _read(out / "spark" / "requests.parquet")
    assert b.columns == a.columns
    assert b.schema == a.schema
    assert b.height == a.height > 0
    for col in a.columns:
        if a.schema[col] == pl.Float64:  # Azure's datetimes: the last bit of seconds may differ
            assert (a[col] - b[col]).abs().max() is None or (a[col] - b[col]).abs().max() < 1e-6, col
            assert a[col].is_null().to_list() == b[col].is_null().to_list(), col
        else:
            assert a[col].to_list() == b[col].to_list(), col


@pytest.mark.parametrize("case", NAMES)
def test_rejects_equal(landed, case):
    _, _, out = landed[case]
    a, b = _read(out / "duckdb" / "rejects.parquet"), _read(out / "spark" / "rejects.parquet")
    assert b.columns == a.columns == ["line", "item", "reason", "record"]
    assert b.select("line", "item", "reason").to_dicts() == a.select("line", "item", "reason").to_dicts()
    # Bytes that are not UTF-8 are shown as '?' by both, but DuckDB may take a following byte with one.
    valid = ~a["reason"].str.contains("invalid encoding")
    assert b.filter(valid)["record"].to_list() == a.filter(valid)["record"].to_list()


def test_bad_inputs_counted_as_the_manifest_says(landed):
    manifest = {c["path"]: c for c in json.loads((BAD / "manifest.json").read_text())["cases"]}
    checked = 0
    for name in NAMES:
        case = manifest.get(name)
        if not case or "reasons" not in case:
            continue
        _, spark, _ = landed[name]
        assert spark["reject_reasons"] == case["reasons"], name
        checked += 1
    assert checked >= 1


def test_mixed_rejects_named(landed):
    _, spark, out = landed["mixed.csv"]
    rejects = _read(out / "spark" / "rejects.parquet")
    assert rejects["line"].to_list() == [6, 9, 10, 11, 12, 13]
    assert spark["rows_read"] == 10 and spark["rows_kept"] == 4


def test_bailian_sessions_resolved_on_spark(landed):
    """Each chat's session is the root its links reach (the same rows as DuckDB's: test_kept_rows_equal)."""
    _, spark, out = landed["bailian_links.jsonl"]
    rows = _read(out / "spark" / "requests.parquet")
    assert spark["reject_reasons"] == {"unparsable timestamp": 1} and rows.height == len(SESSIONS) + 1
    assert dict(zip(rows["request_id"], rows["session_id"])) == SESSIONS


def test_fidelity_edges_as_duckdb_reads_them(landed):
    """The outcomes both engines must share (test_summary_equal, test_kept_rows_equal), stated."""
    _, edges, out = landed["edges.csv"]
    assert edges["reject_reasons"] == {"unparsable failed flag": 5, "non-numeric input_tokens": 3}
    kept = _read(out / "spark" / "requests.parquet")
    assert kept["failed"].sum() == 7 and kept["model"].to_list()[-5:] == ["gpt", "gpt", "\tgpt\t", "gpt", "\u2028gpt"]
    _, dup, out = landed["dup_keys.jsonl"]
    assert dup["reject_reasons"] == {"non-numeric input_tokens": 1}
    kept = _read(out / "spark" / "requests.parquet")
    assert kept["arrival_s"].to_list() == [1.0, 2.0, 3.0, 4.0, 6.0] and kept["hash_ids"].to_list()[3] == [4]
    assert kept["input_tokens"].to_list() == [10, 10, 10, 10, 12]
    _, probe, _ = landed["probe_order.csv"]
    assert probe["time_unit"] == "ms" and probe["rows_kept"] == 10000


def test_quotes_inside_fields_as_duckdb_reads_them(landed):
    """Rejects at the lines counted by the generator, over blocks (test_rejects_equal: the same
    as DuckDB's); kept values as DuckDB's reader reads them (test_kept_rows_equal)."""
    _, spark, out = landed["quotes.csv"]
    assert spark["rows_read"] == 400 and spark["rows_rejected"] == len(QUOTES_BAD)
    assert _read(out / "spark" / "rejects.parquet")["line"].to_list() == QUOTES_BAD
    models = set(_read(out / "spark" / "requests.parquet")["model"].to_list())
    assert {'gpt"4', 'x "y', '"two spaces', "one\nspace", "re opened\nhere", 'ends"\n', "b"} <= models
    session = SparkSession.getActiveSession()
    try:
        for key, value in BLOCKS.items():
            session.conf.set(key, value)
        blocks = session.read.text(str(out.parent / "quotes.csv")).select("_metadata.file_block_start")
        assert blocks.distinct().count() > 5
    finally:
        for key in BLOCKS:
            session.conf.set(key, SPARK.spark_conf[key])


def test_two_faults_named_as_duckdb_names_them(landed):
    """Both engines name both faults of a record, in one order (test_rejects_equal: the same)."""
    _, spark, out = landed["two_faults.csv"]
    for engine in ("duckdb", "spark"):
        rejects = _read(out / engine / "rejects.parquet")
        assert rejects["line"].to_list() == [3, 4, 5, 6, 7], engine
        assert rejects["reason"].to_list() == [f"unreadable record: {r}" for r in TWO_FAULTS_REASONS], engine
    assert spark["rows_read"] == 6 and spark["rows_kept"] == 1


def test_bad_input_on_spark_is_one_line(tmp_path):
    """A refusal after the SparkSession started: the JVM's startup warnings stay off stderr."""
    done = run_cli("ingest", BAD / "header_only.csv", "--out", tmp_path, "--engine", "spark")
    assert done.returncode == 2 and "no data rows" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_output_is_reused_on_spark_and_replaced_by_duckdb(landed):
    _, spark, out = landed["burstgpt_v3.csv"]
    again = ingest_trace(FIXTURES / "burstgpt_v3.csv", out / "spark", engine=SPARK)
    assert again["cached"] and again["rows_kept"] == spark["rows_kept"]
    # the same bytes on DuckDB are landed again, as DuckDB's file, not Spark's directory
    duck = ingest_trace(FIXTURES / "burstgpt_v3.csv", out / "spark")
    assert not duck["cached"] and (out / "spark" / "requests.parquet").is_file()


@pytest.mark.parametrize("case", AGENT_FORMATS)
def test_agent_formats_land_on_spark(landed, case):
    """Each call refused names its source line and, where a record holds several calls, its item
    (test_rejects_equal: the same as DuckDB's); rows read = kept + rejected."""
    _, spark, out = landed[case]
    assert spark["format"] == AGENT_FORMATS[case] and spark["rows_rejected"] > 0 and spark["rows_kept"] > 0
    assert spark["rows_read"] == spark["rows_kept"] + spark["rows_rejected"]
    rejects = _read(out / "spark" / "rejects.parquet")
    assert rejects.height == spark["rows_rejected"] and rejects["line"].min() >= 1
    assert rejects["record"].null_count() == 0 and rejects["reason"].null_count() == 0


@pytest.mark.parametrize("case", ["tracelab.jsonl", "copilot.jsonl.gz", "cctraces"])
def test_agent_formats_in_many_pieces_as_in_one(landed, tmp_path, case):
    """Parsed on the executors in many pieces (blocks of 700 bytes, pieces of 200 bytes of text:
    a few lines each, a trace file split by its requests), the calls are DuckDB's, in order."""
    from servetrace.ingest.agentic import split
    from servetrace.spark.agentic import PIECE_BYTES

    pieces = {PIECE_BYTES: "200", "spark.sql.files.maxPartitionBytes": "700", "spark.sql.files.openCostInBytes": "0"}
    session = SparkSession.getActiveSession()
    try:
        spark = ingest_trace(AGENTIC / case, tmp_path, engine=Engine("spark", "local[2]", {**SPARK.spark_conf, **pieces}))
        if case == "tracelab.jsonl":
            blocks = session.read.text(str(AGENTIC / case)).select("_metadata.file_block_start").distinct().count()
            assert blocks > 3
    finally:
        session.conf.unset(PIECE_BYTES)
        for key in ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes"):
            session.conf.set(key, SPARK.spark_conf[key])
    if case == "cctraces":
        assert len(split.pieces(split.layout(AGENTIC / case / "a.json"), 200)) > 3
    if case == "copilot.jsonl.gz":
        import gzip

        assert sum(len(line) > 0 for line in gzip.open(AGENTIC / case).read().split(b"\n")) > 2
    duck, _, out = landed[case]
    assert {k: spark[k] for k in SUMMARY} == {k: duck[k] for k in SUMMARY}
    for table in ("requests.parquet", "rejects.parquet"):
        assert _read(tmp_path / table).equals(_read(out / "duckdb" / table)), table


def test_cli_ingest_on_spark(tmp_path):
    done = run_cli("ingest", FIXTURES / "burstgpt_v1.csv", "--out", tmp_path, "--engine", "spark",
                   "--spark-master", "local[2]", "--spark-conf", "spark.sql.shuffle.partitions=2", "--json", check=True)
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert summary["rows_read"] == summary["rows_kept"] + summary["rows_rejected"]
    assert (tmp_path / "requests.parquet").is_dir()
    done = run_cli("ingest", AGENTIC / "tracelab.jsonl", "--out", tmp_path / "agent", "--engine", "spark", "--json",
                   check=True)
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert summary["format"] == "tracelab" and (tmp_path / "agent" / "requests.parquet").is_dir()


def test_cctraces_files_named_like_hidden_ones_are_read(tmp_path):
    """Trace files whose names start with `_` or `.` (which Spark's file sources skip) are read on
    Spark as on DuckDB: the same calls, and as many as the fixture's under their plain names."""
    src = tmp_path / "named"
    src.mkdir()
    for old, new in (("a.json", "_a.json"), ("b.json", ".b.json"), ("c.json", "c.json")):
        shutil.copy(AGENTIC / "cctraces" / old, src / new)
    duck = ingest_trace(src, tmp_path / "duckdb")
    spark = ingest_trace(src, tmp_path / "spark", engine=SPARK)
    plain = ingest_trace(AGENTIC / "cctraces", tmp_path / "plain")
    assert {k: spark[k] for k in SUMMARY} == {k: duck[k] for k in SUMMARY}
    assert (spark["rows_read"], spark["rows_kept"]) == (plain["rows_read"], plain["rows_kept"]) and spark["rows_kept"] > 0
    for table in ("requests.parquet", "rejects.parquet"):
        assert _read(tmp_path / "spark" / table).equals(_read(tmp_path / "duckdb" / table)), table
