"""`servetrace ingest TRACE --engine spark`: a raw trace landed as the canonical table by Spark.

The same steps as on DuckDB (`servetrace.ingest`), with the same SQL: the records read by
`spark/raw.py` (numbered by their source line), the `typed` view built by ingest's own
`build_typed` (sql/ingest/typed.sql and the format's checks, transpiled), the kept rows written
sorted by arrival (ties in file order) and the refused ones with their line, reason and text.
rows read = rows kept + rows rejected, counted by one aggregate over the typed records.

Spark writes each table as a directory of Parquet parts (DIR/requests.parquet/part-*.parquet),
its key-value metadata (the summary, the source's sha256) in the directory's `_servetrace.json`
(`servetrace.io.parquet_metadata` reads either). The agent formats flatten their source first,
by the format's own reader, on the executors piece by piece
(spark/agentic.py); Spark then does the rest on the calls (checks, rejects with each call's
line, item and record, the sort). Bailian's parent-linked sessions are resolved by the same pointer-jumping SQL as on
DuckDB (ingest/parents.py), over a view of the kept rows.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from servetrace import io
from servetrace.errors import ServetraceError
from servetrace.ingest.canonical import RawLayout, build_typed, clipped, guess_time_unit
from servetrace.ingest.formats import format_spec
from servetrace.ingest.outliers import REASON as OUTLYING
from servetrace.ingest.outliers import cuts_from_ends, ends_needed
from servetrace.ingest.parents import sessions_from_parents
from servetrace.ingest import agentic
from servetrace.outputs import REJECTS, REQUESTS
from servetrace.schema import COLUMNS, HASH_IDS
from servetrace.settings import IngestSettings
from servetrace.spark import raw as spark_raw
from servetrace.spark.session import checkpoint
from servetrace.spark.transpile import to_spark

ENGINE = "spark"
BUCKET_ROWS = 1 << 17  # rows per bucket when checking file order: a window per bucket, not one over the file
CODECS = {"gzip": (".gz",), "zstd": (".zst", ".zstd"), "none": ()}


class _SparkSQL:
    """The `execute(...).fetchall()` calls ingest's SQL builders make, answered by Spark: a
    `create temp view` becomes a temporary view of the transpiled select, a `create temp table`
    one computed there and then (a checkpoint: a table rebuilt from itself, as pointer
    jumping's is, keeps a plan of one step, not of every step before it)."""

    def __init__(self, spark) -> None:
        self.spark = spark

    def execute(self, query: str) -> "_SparkSQL":
        import sqlglot
        import sqlglot.expressions as exp

        tree = sqlglot.parse_one(query, read="duckdb")
        if isinstance(tree, exp.Create):
            frame = self.spark.sql(to_spark(tree.expression.sql(dialect="duckdb"), {}))
            frame = checkpoint(frame) if tree.args.get("kind") == "TABLE" else frame
            frame.createOrReplaceTempView(tree.this.name)
            self._rows = []
        else:
            self._rows = [tuple(r) for r in self.spark.sql(to_spark(query, {})).collect()]
        return self

    def fetchall(self) -> list[tuple]:
        return self._rows


def _check_source(src, trace: Path) -> None:
    """Spark's text reader picks a codec by the file's name: a compressed file must say so."""
    suffix = trace.suffix.lower()
    known = {s for names in CODECS.values() for s in names}
    if src.compression != "none" and suffix not in CODECS[src.compression]:
        raise ServetraceError(f"{trace}: {src.compression} content under a name Spark reads by its suffix; "
                              f"rename it to end in {CODECS[src.compression][0]}")
    if src.compression == "none" and suffix in known:
        raise ServetraceError(f"{trace}: plain text named {suffix}: Spark would decompress it; rename it")
    if src.padding_at is not None:
        raise ServetraceError(f"{trace}: gzip with trailing padding is read by --engine duckdb only")


def ingest_on_spark(trace: Path, out_dir: Path, settings: IngestSettings, engine) -> dict:
    from servetrace.ingest import _agent_format, cached_summary
    from servetrace.spark.session import spark_session

    trace, out_dir = Path(trace), Path(out_dir)
    agent, src = _agent_format(trace, settings)
    if not agent:
        _check_source(src, trace)
    sha = agentic.source_sha256(trace) if trace.is_dir() else io.sha256_file(trace)
    with io.output_lock(out_dir):
        cached = cached_summary(out_dir, sha, settings, engine_ok=True)
        if cached and Path(cached["requests"]).is_dir():
            return cached
        spark = spark_session(engine.spark_master, engine.spark_conf)
        if agent:
            return _ingest_agent(spark, agent, src, trace, out_dir, settings, sha)
        if src.container == "jsonl":
            src = replace(src, header=spark_raw.jsonl_keys(spark, src))
        spec = format_spec(src, settings.format, settings.mapping, settings.time_unit)
        return _ingest(spark, src, spec, trace, out_dir, settings, sha)


def _ingest_agent(spark, agent: str, src, trace: Path, out_dir: Path, settings: IngestSettings, sha: str) -> dict:
    """An agent format: its reader flattens the source on the executors, piece by piece
    (spark/agentic.py); the calls are then landed as any records."""
    from servetrace.ingest.source import Source
    from servetrace.spark.agentic import flattened_calls

    if src is not None and agentic.READERS[agent].CONTAINER == "jsonl":
        _check_source(src, trace)
    calls, columns = flattened_calls(spark, agent, trace, src)
    shown = Source(trace, src.compression if src else "none", "parquet", columns)
    return _ingest(spark, shown, agentic.spec(agent), trace, out_dir, settings, sha, spark_raw.flattened_raw(calls))


def _records(spark, src, spec) -> spark_raw.SparkRaw:
    if src.container == "csv":
        return spark_raw.csv_raw(spark, src)
    if src.container == "jsonl":
        keys = sorted(set(spec.json_paths) | ({spec.hash_ids} if spec.hash_ids else set()))
        return spark_raw.jsonl_raw(spark, src, keys, spec.hash_ids)
    return spark_raw.parquet_raw(spark, src)


def _ingest(spark, src, spec, trace: Path, out_dir: Path, settings: IngestSettings, sha: str, records=None) -> dict:
    records = records or _records(spark, src, spec)
    try:
        return _land(spark, src, spec, trace, out_dir, settings, sha, records)
    finally:
        records.release()


def _land(spark, src, spec, trace: Path, out_dir: Path, settings: IngestSettings, sha: str,
          records: spark_raw.SparkRaw) -> dict:
    from pyspark.sql import functions as F

    from servetrace.ingest import _origin, _stream_select, failure_rule

    con = _SparkSQL(spark)
    records.raw.createOrReplaceTempView("raw")
    layout = RawLayout(1 if src.container == "csv" else 0, src.container != "parquet", records.column_of,
                       spec.flattened)
    unit, epoch = guess_time_unit(con, layout, spec, numbered=True)
    build_typed(con, layout, spec, unit, src, epoch, numbered=True)
    select, _ = _stream_select(spec, True)
    # the typed columns' types: a cast of one that is already a number or a flag needs no guard
    types = {f.name: f.dataType.simpleString() for f in spark.table("typed").schema.fields}
    typed = spark.sql(to_spark(select, {}, types)).persist()
    counts, lo, structural = _counts(typed, records.structural)
    kept_rows = counts.get(None, 0)
    m = ends_needed(kept_rows, settings.outliers)
    if m is not None:  # outlying arrivals: read again, refusing them like any bad record
        kept = typed.where(F.col("reason").isNull())
        low = [r[0] for r in kept.orderBy("arrival_s").limit(m + 1).select("arrival_s").collect()]
        high = [r[0] for r in kept.orderBy(F.col("arrival_s").desc()).limit(m + 1).select("arrival_s").collect()]
        cut_low, cut_high = cuts_from_ends(low, high[::-1], m, settings.outliers)
        bounds = [f"t.arrival_s {op} {cut!r}" for op, cut in (("<", cut_low), (">", cut_high)) if cut is not None]
        if bounds:
            select, _ = _stream_select(spec, True, " or ".join(bounds))
            typed.unpersist()
            typed = spark.sql(to_spark(select, {}, types)).persist()
            counts, lo, structural = _counts(typed, records.structural)
    parsed = sum(counts.values())
    rows_read = parsed + structural
    if rows_read == 0:
        raise ServetraceError(f"{trace}: no data rows (header only or empty)")
    kept_rows = counts.pop(None, 0)
    reasons = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    if structural:
        reasons["unreadable record"] = structural
    if kept_rows == 0:
        raise ServetraceError(f"{trace}: no usable rows: all {rows_read:,} rejected ("
                              + ", ".join(f"{r}: {n:,}" for r, n in list(reasons.items())[:3]) + ")")
    shift, origin = _origin(spec, unit, lo, trace)
    summary = {
        "source": str(trace), "format": spec.name, "failure_rule": failure_rule(spec),
        "compression": src.compression, "sha256": sha, "rows_read": rows_read, "rows_kept": kept_rows,
        "rows_rejected": rows_read - kept_rows, "reject_reasons": reasons, "was_sorted": _in_file_order(typed),
        "time_unit": unit, "origin": origin, "origin_shift_s": shift,
        "columns": {k: v for k, v in sorted(spec.columns.items())}, "cached": False, "engine": ENGINE,
    }
    meta = {
        "servetrace.format": spec.name, "servetrace.failure_rule": failure_rule(spec), "servetrace.origin": origin,
        "servetrace.source": trace.name, "servetrace.sha256": sha, "servetrace.rows_read": str(rows_read),
        "servetrace.rows_kept": str(kept_rows), "servetrace.rows_rejected": str(rows_read - kept_rows),
        "servetrace.sorted_input": str(summary["was_sorted"]).lower(),
        "servetrace.ingest_settings": json.dumps(settings.to_dict(), sort_keys=True),
        "servetrace.summary": json.dumps(summary, sort_keys=True), "servetrace.engine": ENGINE,
    }
    names = COLUMNS + ([HASH_IDS] if spec.hash_ids else [])
    kept = typed.where(F.col("reason").isNull())
    if spec.parent_link:
        kept = _with_sessions(con, kept)
    kept = kept.withColumn("arrival_s", F.col("arrival_s") - F.lit(shift)).orderBy("arrival_s", "rec").select(*names)
    rejects = _rejects(spark, typed, records)
    _clear_duckdb_outputs(out_dir)
    with io.atomic_dir(out_dir / REJECTS) as tmp:
        rejects.write.mode("overwrite").option("compression", "zstd").parquet(str(tmp))
        io.write_json(tmp / io.PARQUET_SIDECAR, {"servetrace.sha256": sha})
    with io.atomic_dir(out_dir / REQUESTS) as tmp:  # last: the marker of a complete ingest
        kept.write.mode("overwrite").option("compression", "snappy").parquet(str(tmp))
        io.write_json(tmp / io.PARQUET_SIDECAR, meta)
    typed.unpersist()
    return {**summary, "requests": str(out_dir / REQUESTS), "rejects": str(out_dir / REJECTS)}


def _with_sessions(con: _SparkSQL, kept):
    """Bailian: each kept chat's session, the root its parent links reach (ingest/parents.py's
    pointer jumping, the same SQL as on DuckDB), else the chat itself."""
    from pyspark.sql import functions as F

    kept.select("chat_id", "parent_chat_id").createOrReplaceTempView("chats")
    sessions_from_parents(con)
    roots = con.spark.table("roots")
    return (kept.join(roots, "chat_id", "left")
            .withColumn("session_id", F.coalesce(F.col("root"), F.col("chat_id")).cast("string")))


def _counts(typed, structural) -> tuple[dict, float | None, int]:
    """{reason (None: kept): rows}, the smallest kept arrival and the unreadable records: one job."""
    from pyspark.sql import functions as F

    parsed = typed.groupBy("reason").agg(F.count(F.lit(1)).alias("n"), F.min("arrival_s").alias("lo"),
                                         F.lit(False).alias("unreadable"))
    unreadable = structural.agg(F.lit(None).cast("string").alias("reason"), F.count(F.lit(1)).alias("n"),
                                F.lit(None).cast("double").alias("lo"), F.lit(True).alias("unreadable"))
    rows = parsed.unionByName(unreadable).collect()
    structural_rows = next(r["n"] for r in rows if r["unreadable"])
    rows = [r for r in rows if not r["unreadable"]]
    counts = {r["reason"]: r["n"] for r in rows}
    lo = next((r["lo"] for r in rows if r["reason"] is None), None)
    return counts, lo, structural_rows


def _in_file_order(typed) -> bool:
    """Whether kept arrivals never go backwards in file order: lag() within buckets of rows, each
    bucket's first arrival against the previous bucket's last (one row per bucket comes back)."""
    from pyspark.sql import Window, functions as F

    kept = typed.where(F.col("reason").isNull()).select("rec", "arrival_s",
                                                        (F.col("rec") / F.lit(BUCKET_ROWS)).cast("long").alias("b"))
    back = F.coalesce(F.col("arrival_s") < F.lag("arrival_s").over(Window.partitionBy("b").orderBy("rec")), F.lit(False))
    ends = (kept.select("b", "rec", "arrival_s", back.alias("back")).groupBy("b")
            .agg(F.max("back").alias("back"), F.min_by("arrival_s", "rec").alias("first"),
                 F.max_by("arrival_s", "rec").alias("last")).orderBy("b").collect())
    return not any(r["back"] for r in ends) and all(b["first"] >= a["last"] for a, b in zip(ends, ends[1:]))


def _rejects(spark, typed, records):
    """(line, item, reason, record): refused records with their source text, and the unreadable
    ones, by line."""
    from pyspark.sql import functions as F

    refused = typed.where(F.col("reason").isNotNull()).select("rec", "reason").join(records.text, "rec")
    refused.createOrReplaceTempView("refused_text")
    # a flattened format's reader clipped its records already (a call's own JSON, marked where cut)
    record = "record" if records.flattened else clipped("record")
    clip = spark.sql(to_spark(f"select rec, line, item, reason, {record} as record from refused_text", {}))
    typed_rejects = clip.select("line", "item", "reason", "record", "rec")
    unreadable = records.structural.select("line", F.lit(None).cast("string").alias("item"), "reason",
                                           F.col("record"), F.col("line").alias("rec"))
    unreadable.createOrReplaceTempView("unreadable_text")
    unreadable = spark.sql(to_spark(f"select line, item, reason, {clipped('record')} as record, rec "
                                    "from unreadable_text", {}))
    return (typed_rejects.unionByName(unreadable).orderBy("line", "rec")
            .select(F.col("line").cast("long"), "item", "reason", "record"))


def _clear_duckdb_outputs(out_dir: Path) -> None:
    """An earlier DuckDB ingest's files (one Parquet file each) make way for Spark's directories."""
    for name in (REQUESTS, REJECTS):
        path = out_dir / name
        if path.is_file() and io.parquet_metadata(path).get("servetrace.sha256"):
            path.unlink()
        elif path.is_dir() and not (path / io.PARQUET_SIDECAR).exists():
            raise ServetraceError(f"{path}: a directory servetrace did not write; give another --out")
