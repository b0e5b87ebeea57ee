"""An agent format's source flattened into calls on Spark's executors, by the format's own reader.

The source is read by Spark in pieces (ingest/agentic has the readers): JSON lines (Copilot,
TraceLab) as numbered lines in blocks of the file (raw.numbered_lines; a compressed file, which
one task reads, is spread over ranges of lines), Baseten's Parquet as its splits with each row's
place in the file, a cc-traces directory as one row per trace file (its path: the task reads it). Each task
runs the reader's SQL (sql/ingest/agentic) in an embedded DuckDB over its Arrow batches
(mapInArrow: values pass as Arrow types, not through pandas), piece by piece, so the calls are
those of `--engine duckdb` value for value; a trace file too long to read whole is split by its
`requests` as on DuckDB (agentic/split.py). A column that needs the whole source (TraceLab's turn,
over a session's rounds) is a window. The calls are numbered `rec` in source order (line, then
place in the record) from each piece's count, summed over the pieces as raw.numbered_lines does:
no row reaches the driver.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from servetrace.errors import ServetraceError
from servetrace.ingest import agentic
from servetrace.ingest.agentic import records as reader_records
from servetrace.ingest.canonical import MAX_LINE_BYTES
from servetrace.spark.session import checkpoint

# DuckDB's memory in each task, and the source text it parses at a time (agentic/__init__.py's
# shares of it): a JSON-lines piece of at most 1/CHUNK_SHARE, a trace file split into pieces of
# 1/PIECE_SHARE. `spark.servetrace.pieceBytes` sets both piece sizes instead.
TASK_MEMORY = 1 << 30
PIECE_BYTES = "spark.servetrace.pieceBytes"
ERROR = "servetrace reader: "  # marks a reader's error inside the task's failure, for one clear line
OUT_ROWS = 2048  # calls per Arrow batch handed back (rows carry record text)
BATCH_BYTES_KEY = "spark.sql.execution.arrow.maxBytesPerBatch"
BATCH_BYTES = 64 << 20  # the source rows Spark hands a task at a time (10,000 lines may be far more)


def flattened_calls(spark, name: str, trace: Path, src):
    """(frame, columns): the calls of `trace` in agent format `name` (every column of its
    flattened intermediate, ingest/agentic, with `rec`), materialized on the executors."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    reader = agentic.READERS[name]
    piece = spark.conf.get(PIECE_BYTES, None)
    sizes = ((int(piece), int(piece)) if piece else
             (int(TASK_MEMORY / agentic.CHUNK_SHARE), int(TASK_MEMORY / agentic.PIECE_SHARE)))
    if reader.CONTAINER == "jsonl":
        pieces = _jsonl_pieces(spark, str(src.path), src.compression != "none")
    elif reader.CONTAINER == "parquet":
        pieces = spark.read.parquet(str(trace)).select(
            "*", (F.col("_metadata.row_index") + 1).alias("_row"), F.col("_metadata.file_block_start").alias("_block"))
    else:
        pieces = _trace_files(spark, trace)
    task = _Task(name, str(trace), sizes)
    task.schema = _with_block(task.flatten(_connect(), _empty_input(pieces)), None).schema
    with warnings.catch_warnings():  # pyspark's note on pandas' version: no pandas runs here
        warnings.simplefilter("ignore", FutureWarning)
        flat = pieces.mapInArrow(task, from_arrow_schema(task.schema))
    flat = flat.withColumn("_id", F.monotonically_increasing_id())
    given = spark.conf.get(BATCH_BYTES_KEY, None)  # a batch's bytes into a task: ours unless set
    spark.conf.set(BATCH_BYTES_KEY, given or str(BATCH_BYTES))
    try:
        flat = checkpoint(flat)
    except Exception as exc:  # noqa: BLE001 - a task's failure reaches here as py4j's or pyspark's error
        text = str(exc)
        if ERROR not in text:
            raise
        raise ServetraceError(f"{trace}: {text[text.index(ERROR) + len(ERROR):].splitlines()[0]}") from None
    finally:
        if given is None:
            spark.conf.unset(BATCH_BYTES_KEY)
    frame = _numbered(flat)
    if hasattr(reader, "finish_view_sql"):  # TraceLab's turn: a window over every round
        from servetrace.spark.transpile import to_spark

        frame.createOrReplaceTempView("parts")
        frame = spark.sql(to_spark(reader.finish_view_sql(), {}))
    return frame, [c for c in frame.columns if c != "rec"]


def _jsonl_pieces(spark, path: str, compressed: bool):
    """(line, j, _block): the file's lines (a byte-order mark before the first removed). A
    compressed file is read by one task: its lines are spread over ranges of lines, one block each."""
    from pyspark.sql import functions as F

    from servetrace.spark.raw import numbered_lines

    lines = numbered_lines(spark, path).withColumn(
        "j", F.when(F.col("line") == 1, F.regexp_replace("j", "^\ufeff", "")).otherwise(F.col("j")))
    if compressed and spark.sparkContext.defaultParallelism > 1:
        lines = (lines.repartitionByRange(spark.sparkContext.defaultParallelism, "line").sortWithinPartitions("line")
                 .withColumn("_block", F.spark_partition_id().cast("long")))
    return lines


def _trace_files(spark, trace: Path):
    """(_line, filename, path, _block): each trace file (cctraces.trace_files, the list DuckDB
    reads) with its number in name order and its name as the DuckDB reader shows it, a row each.
    The task reads the file itself: Spark's file sources skip names starting with `_` or `.`, and
    a file's bytes would have to fit one binary value (2 GB). The path must be one the executors
    see (local mode, or a mount they share)."""
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    from servetrace.ingest.agentic import cctraces

    files = cctraces.trace_files(trace)
    rows = [(n, str(f), str(f.absolute()), n) for n, f in enumerate(files, 1)]
    schema = StructType([StructField("_line", LongType()), StructField("filename", StringType()),
                         StructField("path", StringType()), StructField("_block", LongType())])
    slices = max(1, min(len(rows), spark.sparkContext.defaultParallelism * 4))
    return spark.createDataFrame(spark.sparkContext.parallelize(rows, slices), schema)


def _empty_input(pieces):
    """An Arrow table of no rows with the pieces' columns (to learn the reader's output types)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(pieces.schema)
    return pa.Table.from_batches([], schema)


def _with_block(table, block):
    """`table` with the block its rows came from (`_block`, as long)."""
    import pyarrow as pa

    return table.append_column("_block", pa.array([block] * table.num_rows, pa.int64()))


def _connect():
    import duckdb

    return duckdb.connect(config={"threads": 1, "memory_limit": f"{TASK_MEMORY}B"})


class _Task:
    """The function mapInArrow runs in each task: each piece of its batches flattened by the reader."""

    def __init__(self, name: str, trace: str, sizes: tuple[int, int]) -> None:
        self.name, self.trace, (self.chunk, self.split) = name, trace, sizes
        self.schema = None

    def __call__(self, batches):
        import pyarrow as pa

        con = _connect()
        try:
            for batch in batches:  # a loop over Arrow batches
                for piece in _by_block(pa.Table.from_batches([batch]), self.chunk):  # and their pieces
                    out = _with_block(self.flatten(con, piece), piece["_block"][0].as_py())
                    yield from out.cast(self.schema).to_batches(OUT_ROWS)
        finally:
            con.close()

    def flatten(self, con, piece):
        """The reader's rows of `piece` (an Arrow table of one block's rows), in source order."""
        import duckdb

        reader = agentic.READERS[self.name]
        try:
            if reader.CONTAINER == "jsonl":
                _check_lines(piece)
                con.register("piece", piece)
                return con.sql(reader.select_sql(reader_records.jsonl_records("piece"))).to_arrow_table()
            if reader.CONTAINER == "parquet":
                con.register("piece", piece)
                return con.sql(reader.select_sql(Path(self.trace), "piece", "_row")).to_arrow_table()
            return _trace_calls(con, reader, piece, self.split)
        except UnicodeDecodeError:
            raise RuntimeError(f"{ERROR}cannot read as {self.name}: a trace file is not UTF-8 text") from None
        except OSError as exc:
            raise RuntimeError(f"{ERROR}cannot read {exc.filename or 'a trace file'}: {exc.strerror or exc}") from None
        except duckdb.Error as exc:
            text = str(exc).strip().splitlines()
            raise RuntimeError(f"{ERROR}cannot read as {self.name}: {text[0] if text else type(exc).__name__}") from None
        finally:
            for view in ("piece", "texts"):
                con.unregister(view)


def _check_lines(piece) -> None:
    """A line longer than DuckDB's reader allows fails as it does there."""
    import pyarrow.compute as pc

    if piece.num_rows and pc.max(pc.binary_length(piece["j"])).as_py() > MAX_LINE_BYTES:
        raise RuntimeError(f"{ERROR}cannot read: a line is longer than the maximum line size ({MAX_LINE_BYTES} bytes)")


def _by_block(table, most: int):
    """`table`'s rows in runs of one block each, a block's run of lines cut into pieces of about
    `most` bytes of text (whole lines): each piece keeps its rows' order."""
    import numpy as np
    import pyarrow.compute as pc

    n = table.num_rows
    if n == 0:
        return
    blocks = table["_block"].to_numpy()
    cuts = set((np.flatnonzero(blocks[1:] != blocks[:-1]) + 1).tolist())
    if "j" in table.column_names:
        size = np.cumsum(pc.fill_null(pc.binary_length(table["j"]), 0).to_numpy())
        cuts |= set(np.searchsorted(size, np.arange(most, int(size[-1]), most), side="right").tolist())
    edges = [0, *sorted(c for c in cuts if 0 < c < n), n]
    for a, b in zip(edges, edges[1:]):  # a loop over pieces
        yield table.slice(a, b - a)


def _trace_calls(con, reader, piece, most: int):
    """The calls of the trace files in `piece` (one file: its block), read from their paths; a long
    one split by its `requests` into pieces of about `most` bytes (agentic/split.py) read in order,
    as on DuckDB."""
    import shutil
    import tempfile

    import pyarrow as pa

    from servetrace.ingest.agentic import split

    paths = [Path(p) for p in piece["path"].to_pylist()]
    if piece.num_rows == 1 and paths[0].stat().st_size > most:
        lay = split.layout(paths[0])
        if lay is not None and len(lay.starts):
            tmp = Path(tempfile.mkdtemp(prefix="servetrace-trace-"))
            try:
                parts, ended, line = [], 0, piece["_line"][0].as_py()
                for a, b in split.pieces(lay, most):  # a loop over pieces of a long file
                    split.write_piece(paths[0], lay, a, b, tmp / "piece.json")
                    records = reader_records.json_file_records([str(tmp / "piece.json")], line)
                    parts.append(con.sql(reader.select_sql(records, base=a, turns=ended)).to_arrow_table())
                    ended += con.execute(reader.turns_ended_sql(records)).fetchall()[0][0]
                return pa.concat_tables(parts)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    texts = pa.table({"_line": piece["_line"].cast(pa.int64()), "filename": piece["filename"].cast(pa.string()),
                      "content": pa.array([p.read_bytes().decode("utf-8") for p in paths], pa.string())})
    con.register("texts", texts)
    return con.sql(reader.select_sql(reader_records.json_text_records("texts"))).to_arrow_table()


def _numbered(flat):
    """`flat` (the calls, each task's in source order, with `_id`) numbered `rec` from 1 in source
    order: a block's calls are consecutive in its task; blocks ordered by their first line."""
    from pyspark.sql import Window, functions as F

    blocks = flat.groupBy("_block").agg(F.min("_id").alias("_first"), F.count(F.lit(1)).alias("_n"),
                                        F.min("_line").alias("_start"))
    before = F.sum("_n").over(Window.orderBy("_start").rowsBetween(Window.unboundedPreceding, -1))
    offsets = blocks.select("_block", "_first", F.coalesce(before, F.lit(0)).alias("_offset"))
    return (flat.join(F.broadcast(offsets), "_block")
            .withColumn("rec", F.col("_id") - F.col("_first") + F.col("_offset") + 1)
            .drop("_block", "_first", "_offset", "_id"))

