"""Which engine runs the stages: DuckDB on this machine (the default), or Spark past it.

Both run the same SQL files (`sql/`; Spark through `servetrace.spark.transpile`) and the same
stage Python over the small tables they return. They differ in the connection the stages talk to
(here) and in the gap statistics (`characterize`: DuckDB's one numpy pass over the rows in arrival
order, `rows/stream.py`, which also feeds the bundle fit; Spark's set-based SQL form,
`stages/gaps_sql.py`, partitioned by analysis window so no executor needs the whole trace).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from servetrace.errors import ServetraceError

ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class Engine:
    name: str = "duckdb"
    spark_master: str | None = None  # e.g. local[2], spark://host:7077, yarn
    spark_conf: dict = field(default_factory=dict)  # --spark-conf K=V

    def __post_init__(self) -> None:
        if self.name not in ENGINES:
            raise ServetraceError(f"--engine {self.name!r}: expected one of {', '.join(ENGINES)}")
        if self.name == "duckdb" and (self.spark_master or self.spark_conf):
            raise ServetraceError("--spark-master and --spark-conf go with --engine spark")

    @contextlib.contextmanager
    def connect(self, requests: str | Path, memory_limit: str | None = None, threads: int | None = None,
                scratch_dir: str | Path | None = None) -> Iterator:
        if self.name == "duckdb":
            from servetrace.stages import sql

            with sql.connect(requests, memory_limit, threads, scratch_dir) as con:
                yield con
            return
        from servetrace.spark.connection import SparkConnection
        from servetrace.spark.session import spark_session

        con = SparkConnection(spark_session(self.spark_master, self.spark_conf), requests)
        try:
            yield con
        finally:
            con.close()
