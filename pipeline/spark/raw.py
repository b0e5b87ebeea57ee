"""A raw trace's records on Spark, numbered by the line an editor shows: the `raw` view ingest's
typed SQL reads (sql/ingest/typed.sql, transpiled), and the records the reader cannot read.

DuckDB's readers (sql/ingest/raw_*.sql) are table functions of its own; here the file is read as
text lines, numbered in file order without a pass through one task (each block's lines are
counted, the counts summed over the few blocks, broadcast), then
- CSV: the quote state at each line (ingest/quotes.py: each line keeps, flips, sets or clears
  it; the state is the last constant line's, flipped once per flip between) says where quoted
  newlines open and close, as `ingest/lines.py` finds them for DuckDB; the lines between are
  joined into one record. The state is found block by block (a window per block, one row per
  block across them), so no pass goes through one task but the pairing of the lines that open
  and close a quoted newline. Each
  record is split by `from_csv` into the header's columns, c0, c1, ... (short rows padded with
  nulls, as DuckDB's null_padding does); a record with a non-empty field past the header's, an
  unterminated quote, text after a closing quote or bytes that are not UTF-8 (Spark keeps a line's bytes as read:
  `is_valid_utf8`) is unreadable, with DuckDB's reason.
- JSON lines: each non-blank line a record; `valid` (parses as JSON) and `ok` (an object), the
  format's keys as c0, c1, ...
- Parquet: the file's columns, rows numbered by their index in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from servetrace.ingest.canonical import MAX_LINE_BYTES
from servetrace.ingest.quotes import quote_patterns, regex_literal
from servetrace.ingest.source import Source

# DuckDB's words for what its CSV reader refuses (reject_errors), so rejects read the same. A
# record with several faults names their types in the order of DuckDB's error type enum, then
# the first one's message (sql/ingest/structural_reasons.sql).
UNREADABLE = "unreadable record: {types} ({message})"
TOO_MANY = ("too many columns", "Expected Number of Columns: {n} Found: {found}")
UNQUOTED = ("unquoted value", "Value with unterminated quote found.")
ENCODING = ("invalid encoding", "Invalid unicode (byte sequence mismatch) detected. This file is not utf-8 encoded.")
UNTERMINATED = UNREADABLE.format(types=UNQUOTED[0], message=UNQUOTED[1])
BAD_ENCODING = UNREADABLE.format(types=ENCODING[0], message=ENCODING[1])
TOO_LONG = "unreadable record: line size exceeded (Maximum line size of {n} bytes exceeded.)"


@dataclass
class SparkRaw:
    """`raw`: (rec, the record's columns...); `structural`: (line, reason, record) of the records
    the reader could not read; `column_of`: source column name -> raw column; `text`: (rec, line,
    item, record) the source line of a record, where in it a call sits (an agent format's) and
    its text, for rejects; `flattened`: an agent format's calls (their text clipped already)."""

    raw: object
    structural: object
    column_of: dict[str, str]
    text: object
    flattened: bool = False
    cached: list = field(default_factory=list)  # frames kept while the ingest reads them; released after

    def release(self) -> None:
        for frame in self.cached:
            frame.unpersist()


def numbered_lines(spark, path: str):
    """(line, j, _block): the file's physical lines, numbered from 1 in file order (blank lines
    included), and the block each was read from."""
    from pyspark.sql import Window, functions as F

    frame = spark.read.text(path).select(F.col("value").alias("j"), F.col("_metadata.file_block_start").alias("_block"),
                                         F.monotonically_increasing_id().alias("_id"))
    blocks = frame.groupBy("_block").agg(F.min("_id").alias("_first"), F.count(F.lit(1)).alias("_n"))
    before = F.sum("_n").over(Window.orderBy("_block").rowsBetween(Window.unboundedPreceding, -1))
    offsets = blocks.select("_block", "_first", F.coalesce(before, F.lit(0)).alias("_offset"))
    return (frame.join(F.broadcast(offsets), "_block")
            .select((F.col("_id") - F.col("_first") + F.col("_offset") + 1).alias("line"), "j", "_block"))


def _whole(pattern: str):
    from pyspark.sql import functions as F

    return F.col("j").rlike(f"^(?:{pattern})\\z")


def _state(value, flips, key):
    """Inside a quoted field: `value` flipped `flips` times; `key` packs (line, value, parity)
    of the last constant line before, else null (then `value` is the state the span starts in)."""
    from pyspark.sql import functions as F

    parity = (flips + F.coalesce(key, F.lit(0)) % 2) % 2 == 1
    return F.when(key.isNull(), value != parity).otherwise((F.shiftright(key, 1) % 2 == 1) != parity)


def _quote_spans(lines, delimiter: str):
    """(a, b): the lines that open (a) and close (b, null: never) each quoted newline. Each line
    with a quote is one of four functions of the state it starts in (ingest/quotes.py); within a
    block the state is the last constant line's flipped per flip since, and so across blocks."""
    from pyspark.sql import Window, functions as F

    quotes = quote_patterns(delimiter)
    c, o = _whole(quotes.opens), _whole(quotes.stays_open)
    marked = (lines.where(F.instr("j", '"') > 0).select("line", "_block", c.alias("c"), o.alias("o"))
              .where(F.col("c") | ~F.col("o")))  # a line that keeps the state changes nothing
    flip = (F.col("c") & ~F.col("o")).cast("long")
    packed = F.when(F.col("c") == F.col("o"), F.col("line") * 4 + F.col("c").cast("long") * 2 + F.col("cf") % 2)
    inside = Window.partitionBy("_block").orderBy("line")
    counted = marked.withColumn("flip", flip).withColumn(
        "cf", F.sum("flip").over(inside.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
    keyed = counted.withColumn("k", F.max(packed).over(inside.rowsBetween(Window.unboundedPreceding, -1)))
    blocks = counted.groupBy("_block").agg(F.max(packed).alias("k"), F.max("cf").alias("n"))
    # a block is constant (its last constant line's value, flipped by the flips after it) or flips n times
    value = _state(F.lit(False), F.col("n"), F.col("k"))
    blocks = blocks.select("_block", F.col("k").isNotNull().alias("c"),
                           F.when(F.col("k").isNull(), F.col("n") % 2).otherwise(0).alias("flip"), value.alias("v"))
    across = Window.orderBy("_block")
    bpacked = F.when(F.col("c"), F.col("_block") * 4 + F.col("v").cast("long") * 2 + F.col("cf") % 2)
    blocks = blocks.withColumn("cf", F.sum("flip").over(across.rowsBetween(Window.unboundedPreceding,
                                                                             Window.currentRow)))
    blocks = blocks.withColumn("bk", F.max(bpacked).over(across.rowsBetween(Window.unboundedPreceding, -1)))
    starts = blocks.select("_block", _state(F.lit(False), F.col("cf") - F.col("flip"), F.col("bk")).alias("s0"))
    states = keyed.join(F.broadcast(starts), "_block").select(
        "line", "c", "o", _state(F.col("s0"), F.col("cf") - F.col("flip"), F.col("k")).alias("inside"))
    after = F.when(F.col("inside"), F.col("o")).otherwise(F.col("c"))
    changes = states.where(F.col("inside") != after).select("line", "inside")
    pairs = changes.select(F.col("line").alias("a"), F.lead("line").over(Window.orderBy("line")).alias("b"), "inside")
    return pairs.where(~F.col("inside")).select("a", "b")


def _csv_records(spark, lines, delimiter: str):
    """(rec, record, open): CSV records after the header line, each numbered by its first line;
    a quoted newline joins lines into one record; `open`: its quote never closes."""
    from pyspark.sql import functions as F

    spans = _quote_spans(lines, delimiter).cache()
    blank = F.col("j") == ""  # a line of spaces is a record (of one empty-ish field), as DuckDB reads it
    if spans.limit(1).count() == 0:  # no quoted newline: every non-blank line is a record
        spans.unpersist()
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
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    records = _csv_records(spark, numbered_lines(spark, str(src.path)), src.delimiter)
    n = len(src.header)
    schema = ", ".join(f"c{i} STRING" for i in range(n))
    options = {"sep": src.delimiter, "quote": '"', "escape": '"', "mode": "PERMISSIVE"}
    quotes = quote_patterns(src.delimiter)
    clean = F.col("record").rlike(f"^(?:{quotes.clean})\\z")
    # DuckDB's reader lets surplus fields pass when they are all empty ("a,b,," or ',""'): only
    # a surplus field with something in it makes a record unreadable. (The fields of a record
    # with no open quote are its tokens; a pattern with no alternation repeated per character,
    # whose recursion would overflow Java's stack on a long quoted field.)
    fields = F.regexp_extract_all(F.concat("record", F.lit(src.delimiter)), F.lit(quotes.token), 0)
    surplus = F.size(F.filter(fields, lambda f, i: (i >= n) & ~f.isin(src.delimiter, '""' + src.delimiter))) > 0
    valid = F.expr("is_valid_utf8(record)")
    faults = [(surplus, TOO_MANY[0], TOO_MANY[1].format(n=n, found=n + 1)),
              (~clean, *UNQUOTED),  # text after a closing quote: DuckDB's "unquoted value"
              (clean & ~valid, *ENCODING)]  # (after such text DuckDB reads no encoding fault)
    problem = (F.when(F.col("open"), F.lit(UNTERMINATED))
               .when(F.length("record") > MAX_LINE_BYTES, F.lit(TOO_LONG.format(n=MAX_LINE_BYTES)))
               .otherwise(_named(faults)))
    checked = records.withColumn("problem", problem)
    # Read once, kept (memory, else disk): the unit's guess, the typed checks and the rejects each
    # read the records again, and each reading would number the lines and test them anew.
    read = checked.select(
        "rec", "problem", F.when(F.col("problem").isNull(), F.from_csv(_as_duckdb_reads(src.delimiter), schema,
                                                                      options)).alias("r"),
        F.when(F.col("problem").isNotNull(), F.col("record")).alias("record")).persist(StorageLevel.MEMORY_AND_DISK)
    parsed = read.where(F.col("problem").isNull()).select("rec", "r.*")
    # An empty quoted field is an empty string on Spark, NULL in DuckDB's reader (both mean "no value").
    raw = parsed.select("rec", *[F.when(F.col(f"c{i}") != "", F.col(f"c{i}")).alias(f"c{i}") for i in range(n)])
    structural = read.where(F.col("problem").isNotNull()).select(
        F.col("rec").alias("line"), F.col("problem").alias("reason"),
        F.regexp_replace(F.expr("make_valid_utf8(record)"), "\ufffd", "?").alias("record"))
    column_of: dict[str, str] = {}
    for i, name in enumerate(src.header):
        column_of.setdefault(name, f"c{i}")
    text = F.concat_ws(",", *[F.coalesce(F.col(c), F.lit("")) for c in dict.fromkeys(column_of.values())])
    return SparkRaw(raw, structural, column_of, _text(raw, text), cached=[read])


def _named(faults):
    """The reason of a record with some of `faults` ((condition, type, message), in the order of
    DuckDB's error types): every type it has, joined by '; ', and the first one's message; null
    when it has none."""
    from pyspark.sql import functions as F

    types = F.array_compact(F.array(*[F.when(c, F.lit(t)) for c, t, _ in faults]))
    message = F.coalesce(*[F.when(c, F.lit(m)) for c, _, m in faults])
    return F.when(F.size(types) > 0, F.concat(F.lit("unreadable record: "), F.array_join(types, "; "), F.lit(" ("),
                                              message, F.lit(")")))


def _as_duckdb_reads(delimiter: str):
    """`record` as Spark's CSV parser reads it as DuckDB does: a quoted field with one space
    before it, or reopened after spaces (`"a" "b"` is `a b`), written as one plain quoted field."""
    from pyspark.sql import functions as F

    quotes = quote_patterns(delimiter)
    fields = F.regexp_extract_all(F.concat("record", F.lit(delimiter)), F.lit(quotes.token), 0)

    def plain(field):
        pieces = F.regexp_extract_all(F.regexp_extract(field, quotes.quoted, 1), F.lit('" *"|[^"]+'), 0)
        body = F.array_join(F.transform(pieces, lambda p: F.when(p.rlike('^" +"$'), F.regexp_replace(p, '"', ""))
                                        .otherwise(p)), "")
        return F.when(field.rlike('^ ?"'), F.concat(F.lit('"'), body, F.lit('"' + delimiter))).otherwise(field)

    joined = F.array_join(F.transform(fields, plain), "")
    d = regex_literal(delimiter)
    odd = F.col("record").rlike(f'(?:^|{d}) "|" +"')  # what the parser would read otherwise (rare)
    return F.when(odd, joined.substr(F.lit(1), F.length(joined) - 1)).otherwise(F.col("record"))


def jsonl_raw(spark, src: Source, keys: list[str], hash_key: str | None) -> SparkRaw:
    """`keys`: the JSON keys the format reads (c0, c1, ... in sorted order, as DuckDB's raw view
    names them); `hash_key`: the one read as JSON text (a list), not as a string."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    lines = numbered_lines(spark, str(src.path)).withColumn(
        "j", F.when(F.col("line") == 1, F.regexp_replace("j", "^\ufeff", "")).otherwise(F.col("j")))
    parsed = F.expr("try_parse_json(j)")
    records = lines.where(F.trim("j") != "").select(F.col("line").alias("rec"), "j", parsed.alias("_v"))
    records = records.select("rec", "j", F.col("_v").isNotNull().alias("valid"),
                             F.coalesce(F.expr("schema_of_variant(_v)").startswith("OBJECT"), F.lit(False)).alias("ok"))
    records = records.persist(StorageLevel.MEMORY_AND_DISK)  # parsed once: the ingest reads them several times
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
    return SparkRaw(raw, structural, column_of, _text(raw, F.col("j")), cached=[records])


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
    column_of = {name: name for name in src.header}
    text = _text(raw, F.to_json(F.struct(*[F.col(f"`{c}`") for c in src.header])))
    return SparkRaw(raw, _none(spark), column_of, text)


def flattened_raw(calls) -> SparkRaw:
    """An agent format's calls (spark/agentic.py), each with its source line, item and record text
    in columns of its own, numbered `rec`."""
    from pyspark.sql import functions as F

    from servetrace.ingest.canonical import ITEM, LINE, RECORD

    column_of = {name: name for name in calls.columns if name != "rec"}
    item = F.col(ITEM) if ITEM in column_of else F.lit(None).cast("string")
    text = calls.select("rec", F.col(LINE).cast("long").alias("line"), item.alias("item"), F.col(RECORD).alias("record"))
    return SparkRaw(calls, _none(calls.sparkSession), column_of, text, flattened=True)


def _none(spark):
    """No unreadable record (a reader that refuses none itself)."""
    return spark.createDataFrame([], "line bigint, reason string, record string")


def _text(raw, record):
    """(rec, line, item, record): a record is at the line it is numbered by, no item."""
    from pyspark.sql import functions as F

    return raw.select("rec", F.col("rec").alias("line"), F.lit(None).cast("string").alias("item"),
                      record.alias("record"))


def _json_path(key: str) -> str:
    return f"$.{key}" if key.replace("_", "").isalnum() else "$['" + key.replace("'", "\\'") + "']"
