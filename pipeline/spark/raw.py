"""A raw trace's records on Spark, numbered by the line an editor shows: the `raw` view ingest's
typed SQL reads (sql/ingest/typed.sql, transpiled), and the records the reader cannot read.

DuckDB's readers (sql/ingest/raw_*.sql) are table functions of its own; here the file is read as
text lines, numbered in file order without a pass through one task (each block's lines are
counted, the counts summed over the few blocks, broadcast), then
- CSV: lines with an odd number of quote characters open and close quoted newlines (as
  `ingest/lines.py` finds them for DuckDB); the lines between are joined into one record. Each
  record is split by `from_csv` into the header's columns, c0, c1, ... (short rows padded with
  nulls, as DuckDB's null_padding does); a record with a non-empty field past the header's, an
  unterminated quote or bytes that are not UTF-8 (Spark keeps a line's bytes as read:
  `is_valid_utf8`) is unreadable, with DuckDB's reason.
- JSON lines: each non-blank line a record; `valid` (parses as JSON) and `ok` (an object), the
  format's keys as c0, c1, ...
- Parquet: the file's columns, rows numbered by their index in the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from servetrace.ingest.canonical import MAX_LINE_BYTES
from servetrace.ingest.source import Source

# DuckDB's words for what its CSV reader refuses (reject_errors), so rejects read the same.
UNTERMINATED = "unreadable record: unquoted value (Value with unterminated quote found.)"
BAD_ENCODING = ("unreadable record: invalid encoding (Invalid unicode (byte sequence mismatch) detected. "
                "This file is not utf-8 encoded.)")
TOO_LONG = "unreadable record: line size exceeded (Maximum line size of {n} bytes exceeded.)"
TOO_MANY = "unreadable record: too many columns (Expected Number of Columns: {n} Found: {found})"
QUOTED = '"([^"]|"")*"'  # one quoted field, escaped quotes inside


@dataclass
class SparkRaw:
    """`raw`: (rec, the record's columns...); `structural`: (line, reason, record) of the records
    the reader could not read; `column_of`: source column name -> raw column; `text`: (rec,
    record) the source text of a record, for rejects."""

    raw: object
    structural: object
    column_of: dict[str, str]
    text: object


def numbered_lines(spark, path: str):
    """(line, j): the file's physical lines, numbered from 1 in file order (blank lines included)."""
    from pyspark.sql import Window, functions as F

    frame = spark.read.text(path).select(F.col("value").alias("j"), F.col("_metadata.file_block_start").alias("_block"),
                                         F.monotonically_increasing_id().alias("_id"))
    blocks = frame.groupBy("_block").agg(F.min("_id").alias("_first"), F.count(F.lit(1)).alias("_n"))
    before = F.sum("_n").over(Window.orderBy("_block").rowsBetween(Window.unboundedPreceding, -1))
    offsets = blocks.select("_block", "_first", F.coalesce(before, F.lit(0)).alias("_offset"))
    return (frame.join(F.broadcast(offsets), "_block")
            .select((F.col("_id") - F.col("_first") + F.col("_offset") + 1).alias("line"), "j"))


def _csv_records(spark, lines):
    """(rec, record, open): CSV records after the header line, each numbered by its first line;
    a quoted newline joins lines into one record; `open`: its quote never closes."""
    from pyspark.sql import Window, functions as F

    quotes = F.length("j") - F.length(F.regexp_replace("j", '"', ""))
    odd = lines.where((quotes % 2) == 1).select("line")
    rank = F.row_number().over(Window.orderBy("line"))
    ranked = odd.select("line", rank.alias("k"))
    opens = ranked.where(F.col("k") % 2 == 1).select(F.col("line").alias("a"), (F.col("k") + 1).alias("k"))
    closes = ranked.where(F.col("k") % 2 == 0).select(F.col("line").alias("b"), "k")
    spans = opens.join(closes, "k", "left").select("a", "b")
    blank = F.col("j") == ""  # a line of spaces is a record (of one empty-ish field), as DuckDB reads it
    if spans.limit(1).count() == 0:  # no quoted newline: every non-blank line is a record
        return lines.where((F.col("line") > 1) & ~blank).select(F.col("line").alias("rec"), F.col("j").alias("record"),
                                                                F.lit(False).alias("open"))
    spans = F.broadcast(spans)
    inside = lines.join(spans, (lines.line >= spans.a) & (spans.b.isNull() | (lines.line <= spans.b)), "left")
    single = inside.where(F.col("a").isNull() & (F.col("line") > 1) & ~blank).select(
        F.col("line").alias("rec"), F.col("j").alias("record"), F.lit(False).alias("open"))
    joined = (inside.where(F.col("a").isNotNull()).groupBy("a")
              .agg(F.array_join(F.transform(F.array_sort(F.collect_list(F.struct("line", "j"))), lambda x: x["j"]),
                                "\n").alias("record"), F.max(F.col("b").isNull()).alias("open"))
              .select(F.col("a").alias("rec"), "record", "open"))
    return single.unionByName(joined)


def csv_raw(spark, src: Source) -> SparkRaw:
    from pyspark.sql import functions as F

    records = _csv_records(spark, numbered_lines(spark, str(src.path)))
    n = len(src.header)
    schema = ", ".join(f"c{i} STRING" for i in range(n))
    options = {"sep": src.delimiter, "quote": '"', "escape": '"', "mode": "PERMISSIVE"}
    # DuckDB's reader lets surplus fields pass when they are all empty ("a,b,," or ',""'): only
    # a surplus field with something in it makes a record unreadable.
    d = _regex_literal(src.delimiter)
    stripped = F.regexp_replace(F.regexp_replace("record", f'({d}("")?)+$', ""), QUOTED, "")
    fields = F.size(F.split(stripped, d, -1))
    problem = (F.when(F.col("open"), F.lit(UNTERMINATED))
               .when(F.length("record") > MAX_LINE_BYTES, F.lit(TOO_LONG.format(n=MAX_LINE_BYTES)))
               .when(~F.expr("is_valid_utf8(record)"), F.lit(BAD_ENCODING))
               .when(fields > n, F.lit(TOO_MANY.format(n=n, found=n + 1))))
    checked = records.withColumn("problem", problem)
    parsed = checked.where(F.col("problem").isNull()).select(
        "rec", F.from_csv("record", schema, options).alias("r")).select("rec", "r.*")
    # An empty quoted field is an empty string on Spark, NULL in DuckDB's reader (both mean "no value").
    raw = parsed.select("rec", *[F.when(F.col(f"c{i}") != "", F.col(f"c{i}")).alias(f"c{i}") for i in range(n)])
    structural = checked.where(F.col("problem").isNotNull()).select(
        F.col("rec").alias("line"), F.col("problem").alias("reason"),
        F.regexp_replace(F.expr("make_valid_utf8(record)"), "\ufffd", "?").alias("record"))
    column_of: dict[str, str] = {}
    for i, name in enumerate(src.header):
        column_of.setdefault(name, f"c{i}")
    text = F.concat_ws(",", *[F.coalesce(F.col(c), F.lit("")) for c in dict.fromkeys(column_of.values())])
    return SparkRaw(raw, structural, column_of, raw.select("rec", text.alias("record")))


def jsonl_raw(spark, src: Source, keys: list[str], hash_key: str | None) -> SparkRaw:
    """`keys`: the JSON keys the format reads (c0, c1, ... in sorted order, as DuckDB's raw view
    names them); `hash_key`: the one read as JSON text (a list), not as a string."""
    from pyspark.sql import functions as F

    lines = numbered_lines(spark, str(src.path)).withColumn(
        "j", F.when(F.col("line") == 1, F.regexp_replace("j", "^\ufeff", "")).otherwise(F.col("j")))
    parsed = F.expr("try_parse_json(j)")
    records = lines.where(F.trim("j") != "").select(F.col("line").alias("rec"), "j", parsed.alias("_v"))
    records = records.select("rec", "j", F.col("_v").isNotNull().alias("valid"),
                             F.coalesce(F.expr("schema_of_variant(_v)").startswith("OBJECT"), F.lit(False)).alias("ok"))
    column_of, fields = {}, []
    for i, key in enumerate(keys):
        column_of[key] = f"c{i}"
        fields.append(F.when(F.col("ok"), F.get_json_object("j", _json_path(key))).alias(f"c{i}"))
    problem = (F.when(F.length("j") > MAX_LINE_BYTES, F.lit(TOO_LONG.format(n=MAX_LINE_BYTES)))
               .when(~F.expr("is_valid_utf8(j)"), F.lit(BAD_ENCODING)))
    raw = records.where(problem.isNull()).select("rec", "j", "valid", "ok", *fields)
    structural = records.where(problem.isNotNull()).select(
        F.col("rec").alias("line"), problem.alias("reason"),
        F.regexp_replace(F.expr("make_valid_utf8(j)"), "\ufffd", "?").alias("record"))
    return SparkRaw(raw, structural, column_of, raw.select("rec", F.col("j").alias("record")))


def jsonl_keys(spark, src: Source) -> list[str]:
    """The keys of every JSON object in the file, in order of first appearance (sql/ingest/jsonl_keys.sql)."""
    from pyspark.sql import functions as F

    lines = numbered_lines(spark, str(src.path)).withColumn(
        "j", F.when(F.col("line") == 1, F.regexp_replace("j", "^\ufeff", "")).otherwise(F.col("j")))
    keys = (lines.where(F.expr("schema_of_variant(try_parse_json(j)) like 'OBJECT%'"))
            .select("line", F.explode(F.expr("json_object_keys(j)")).alias("k"))
            .groupBy("k").agg(F.min("line").alias("n")).orderBy("n", "k"))
    return [row["k"] for row in keys.collect()]


def parquet_raw(spark, src: Source) -> SparkRaw:
    from pyspark.sql import functions as F

    from servetrace.spark.connection import requests_view

    frame = requests_view(spark, str(src.path))
    raw = frame.withColumn("rec", F.col("file_row_number") + 1).drop("file_row_number")
    empty = spark.createDataFrame([], "line bigint, reason string, record string")
    text = raw.select("rec", F.to_json(F.struct(*[F.col(f"`{c}`") for c in src.header])).alias("record"))
    return SparkRaw(raw, empty, {name: name for name in src.header}, text)


def _json_path(key: str) -> str:
    return f"$.{key}" if key.replace("_", "").isalnum() else "$['" + key.replace("'", "\\'") + "']"


def _regex_literal(ch: str) -> str:
    return "\\" + ch if not ch.isalnum() and ch not in ("\t",) else ch
