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

from servetrace.errors import ServetraceError  # noqa: E402
from servetrace.ingest import ingest_trace  # noqa: E402
from servetrace.stages.engine import Engine  # noqa: E402
from tests.conftest import ROOT, run_cli  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "ingest"
BAD = ROOT / "tests" / "bad_inputs"
SPARK = Engine("spark", "local[2]", {"spark.sql.shuffle.partitions": "2"})
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
CASES = [
    FIXTURES / "rows_bad.csv",  # typed refusals, a repeated header, too many fields, out of order
    "mixed.csv",
    FIXTURES / "burstgpt_v3.csv",  # sessions, latency, failures
    FIXTURES / "azure2023.csv",  # datetime timestamps
    FIXTURES / "azure_mm2025.csv.gz",  # gzip, images
    BAD / "mooncake_bad_line.jsonl",  # not JSON, not an object, missing value, bad hash_ids
    BAD / "unterminated_quote.csv",  # the quote runs to the end of the file: one unreadable record
]
NAMES = [Path(p).name for p in CASES]
SUMMARY = ("format", "rows_read", "rows_kept", "rows_rejected", "reject_reasons", "was_sorted", "time_unit", "origin",
           "origin_shift_s", "columns", "failure_rule", "compression", "sha256")


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    out = tmp_path_factory.mktemp("spark_ingest")
    (out / "mixed.csv").write_bytes(MIXED)
    done = {}
    for i, path in enumerate(out / p if isinstance(p, str) else p for p in CASES):
        duck = ingest_trace(path, out / f"{i}" / "duckdb")
        spark = ingest_trace(path, out / f"{i}" / "spark", engine=SPARK)
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


def test_output_is_reused_on_spark_and_replaced_by_duckdb(landed):
    _, spark, out = landed["burstgpt_v3.csv"]
    again = ingest_trace(FIXTURES / "burstgpt_v3.csv", out / "spark", engine=SPARK)
    assert again["cached"] and again["rows_kept"] == spark["rows_kept"]
    # the same bytes on DuckDB are landed again, as DuckDB's file, not Spark's directory
    duck = ingest_trace(FIXTURES / "burstgpt_v3.csv", out / "spark")
    assert not duck["cached"] and (out / "spark" / "requests.parquet").is_file()


def test_agent_format_says_it_needs_duckdb(tmp_path):
    with pytest.raises(ServetraceError, match="read by its own Python reader.*--engine duckdb"):
        ingest_trace(ROOT / "tests" / "fixtures" / "agentic" / "tracelab.jsonl", tmp_path, engine=SPARK)


def test_cli_ingest_on_spark(tmp_path):
    done = run_cli("ingest", FIXTURES / "burstgpt_v1.csv", "--out", tmp_path, "--engine", "spark",
                   "--spark-master", "local[2]", "--spark-conf", "spark.sql.shuffle.partitions=2", "--json", check=True)
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert summary["rows_read"] == summary["rows_kept"] + summary["rows_rejected"]
    assert (tmp_path / "requests.parquet").is_dir()
    done = run_cli("ingest", ROOT / "tests" / "fixtures" / "agentic" / "tracelab.jsonl", "--out", tmp_path / "agent",
                   "--engine", "spark")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "--engine duckdb" in done.stderr
