"""The calls the stages make on their database, answered by Spark.

The stages talk to DuckDB through a handful of calls: build a table from its SQL file
(`stages.sql.run_sql` / `table`), read a small query result as Polars or numpy, set the run's
variables, register a small Arrow table. `SparkConnection` answers the same calls, so every stage's
Python runs unchanged; everything it reads back is aggregated (a table of windows, groups, bins,
value counts or a seeded sample), never the rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from servetrace.spark.session import checkpoint
from servetrace.spark.transpile import sql_file, to_spark, to_spark_steps

ENGINE = "spark"


class Result:
    """A query's result, fetched as the DuckDB relation calls the stages use would fetch it."""

    def __init__(self, frame) -> None:
        self.frame = frame

    def arrow(self) -> pa.Table:
        return self.frame.toArrow()

    def pl(self) -> pl.DataFrame:
        return pl.from_arrow(self.arrow())

    def fetchnumpy(self) -> dict[str, np.ndarray]:
        return {name: col.to_numpy() for name, col in self.pl().to_dict().items()}

    def fetchall(self) -> list[tuple]:
        return [tuple(row) for row in self.frame.collect()]


WINDOW_LIMIT = "spark.sql.optimizer.windowGroupLimitThreshold"
TOP_K = ("fit_ks_sample", "per_window_n", "fit_max_clients", "max_groups")  # the sql/ files' k per group


class SparkConnection:
    """`requests` (the canonical table, with each row's number in file order as `file_row_number`)
    and the stage tables, on a SparkSession."""

    engine = ENGINE

    def __init__(self, spark, requests_path: str | Path) -> None:
        self.spark = spark
        self.variables: dict = {}
        self._cached: list = []
        self._views: list[str] = []
        self._held: list = []  # the view's own checkpoint (the files' row offsets), freed on closing
        requests_view(spark, str(requests_path), self._held).createOrReplaceTempView("requests")

    # the DuckDB connection calls the stages make
    def set_variables(self, variables: dict) -> None:
        self.variables.update(variables)
        # A `row_number() ... <= k` per group is cut to each partition's top k before its shuffle
        # only when k <= this threshold (1,000 by default): fit_ks_sample's 20,000 inter-arrivals
        # per client would otherwise shuffle every row, one task per client.
        top = max((int(self.variables[k]) for k in TOP_K if k in self.variables), default=0)
        if top > int(self.spark.conf.get(WINDOW_LIMIT, "1000")):
            self.spark.conf.set(WINDOW_LIMIT, str(top))

    def run_sql(self, name: str, kind: str) -> None:
        *steps, (_, final) = to_spark_steps(name, sql_file(name), self.variables)
        for view, query in steps:
            self.spark.sql(query).createOrReplaceTempView(view)
        frame = self.spark.sql(final)  # analyzed now: the steps' plans are in its own
        for view, _ in steps:  # a step's view would keep its plan (with all the steps before it)
            self.spark.catalog.dropTempView(view)
        self._views.append(name)
        if kind in ("table", "checkpoint"):
            # read by several stages: computed once, now, and its lineage cut (a checkpoint), so
            # the queries over it plan from its rows. A cached table's plan carries every stage before
            # it, analyzed again by each query that reads it and kept on the driver until released
            # (fit_cross_ranks: 21,355 plan nodes, 11.7 s to optimize at 1 M rows).
            frame = checkpoint(frame)
            self._cached.append(frame)
        frame.createOrReplaceTempView(name)

    def run_once(self, name: str, kind: str) -> None:
        if name not in self._views:  # built by this connection and not released (the session's views outlive it)
            self.run_sql(name, kind)

    def execute(self, query: str):
        """A statement of ingest's SQL builders (the pointer jumping of ingest/parents.py), answered
        as spark/ingest.py answers them: a `create temp table` is a local checkpoint."""
        from servetrace.spark.ingest import _SparkSQL

        return _SparkSQL(self.spark).execute(query)

    def sql(self, query: str) -> Result:
        return Result(self.spark.sql(to_spark(query, self.variables)))

    def register(self, name: str, table: pa.Table) -> None:
        frame = self.spark.createDataFrame(table.to_pandas()) if table.num_rows else \
            self.spark.createDataFrame([], _spark_schema(table.schema))
        frame.createOrReplaceTempView(name)
        self._views.append(name)

    def cursor(self) -> "_Cursor":
        return _Cursor(self)  # a SparkSession takes jobs from several threads

    def mark(self) -> tuple[int, int]:
        """Where the tables built from here on start (for `release`)."""
        return len(self._cached), len(self._views)

    def release(self, mark: tuple[int, int]) -> None:
        """Free the tables built since `mark`: their cached rows or checkpoint blocks, and the views
        naming them (a view holds its analyzed plan, with the lineage of every table before it, on
        the driver's heap until the session ends). A name that existed before `mark` is kept."""
        cached, views = mark
        for frame in self._cached[cached:]:
            _free(frame)
        del self._cached[cached:]
        for view in dict.fromkeys(self._views[views:]).keys() - set(self._views[:views]):
            self.spark.catalog.dropTempView(view)
        del self._views[views:]

    def close(self) -> None:
        self.release((0, 0))
        for frame in self._held:
            _free(frame)


class _Cursor:
    """A second handle on the connection, as DuckDB's cursor is (the gap statistics' thread): its
    `close` leaves the connection's tables, which the other stages still read."""

    def __init__(self, con: SparkConnection) -> None:
        self._con = con

    def __getattr__(self, name: str):
        return getattr(self._con, name)

    def close(self) -> None:
        pass


def _free(frame) -> None:
    """Unpersist a cached frame, or a checkpoint's rows: a local checkpoint's blocks (which
    `unpersist` leaves: they belong to the checkpoint's RDD, not to the cache), a reliable one's
    files in the checkpoint directory."""
    frame.unpersist()
    plan = frame._jdf.queryExecution().logical()
    if plan.getClass().getSimpleName() == "LogicalRDD":
        rdd = plan.rdd()
        rdd.unpersist(False)
        written = rdd.getCheckpointFile()
        if written.isDefined():
            jvm = frame.sparkSession.sparkContext._jvm
            path = jvm.org.apache.hadoop.fs.Path(written.get())
            path.getFileSystem(frame.sparkSession.sparkContext._jsc.hadoopConfiguration()).delete(path, True)


def requests_view(spark, path: str, held: list | None = None):
    """The canonical table with `file_row_number`: a row's number in file order (files by name,
    rows by their index in the file), as DuckDB's `read_parquet(..., file_row_number = true)` counts
    it for one file, and exactly so for a directory of Parquet parts. `held`: a list the files'
    offsets (a checkpoint) join, to be freed with the tables in it."""
    from pyspark.sql import Window, functions as F

    frame = spark.read.parquet(path).select("*", F.col("_metadata.file_path").alias("_file"),
                                            F.col("_metadata.row_index").alias("_row_index"))
    files = frame.groupBy("_file").agg(F.count(F.lit(1)).alias("_rows"))
    # one row per file, computed here once (a view's readers would each count every file's rows again)
    offsets = files.select("_file", (F.sum("_rows").over(Window.orderBy("_file").rowsBetween(
        Window.unboundedPreceding, -1))).alias("_offset")).fillna(0, ["_offset"])
    offsets = checkpoint(offsets)
    if held is not None:
        held.append(offsets)
    return (frame.join(F.broadcast(offsets), "_file")
            .withColumn("file_row_number", F.col("_offset") + F.col("_row_index"))
            .drop("_file", "_row_index", "_offset"))


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)
