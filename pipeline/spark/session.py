"""A SparkSession for servetrace: local by default, any master and configuration by flag."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from typing import IO, Iterator

from servetrace.errors import ServetraceError

# Settings every run gets (a user's --spark-conf overrides them): UTC so timestamps never move,
# no UI server (nothing listens on a port), shuffles sized for aggregated stages, and a driver
# heap that holds one session's many fits: Spark's status store keeps each query's plan (50 kept,
# not 1,000) and its jobs, stages and tasks (100, 100 and 10,000 kept, not 1,000, 1,000 and 100,000:
# a characterize runs ~300 stages). A local master's driver heap: `local_driver_memory`.
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.ui.retainedExecutions": "50",
    "spark.ui.retainedJobs": "100",
    "spark.ui.retainedStages": "100",
    "spark.ui.retainedTasks": "10000",
    # a JSON line with a key twice is valid JSON to DuckDB (each field read from its first
    # occurrence, as Spark's get_json_object reads it), not "not valid JSON"
    "spark.sql.variant.allowDuplicateKeys": "true",
    # Spark 4.1 fails on CTEs whose grouping sets it prunes ("key not found"); the stages' CTEs are
    # small chains, so nothing is lost by not pushing predicates into them.
    "spark.sql.optimizer.excludedRules":
        "org.apache.spark.sql.catalyst.optimizer.PushdownPredicatesAndPruneColumnsForCTEDef",
    # the stages' recursive CTEs (subagent levels) stop at 32 levels themselves; Spark's own bound on
    # a recursion's rows (1 M by default) would fail a trace of more than ~1 M subagent calls
    "spark.sql.cteRecursionRowLimit": "-1",
    # with `spark.checkpoint.dir` set, a reliable checkpoint no query can reach any more has its
    # files deleted (`checkpoint`); the connection's own tables are deleted when released
    "spark.cleaner.referenceTracking.cleanCheckpoints": "true",
}


def parse_conf(pairs: list[str] | None) -> dict[str, str]:
    """`--spark-conf K=V` flags as a dict; a malformed one is a clear error."""
    conf: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ServetraceError(f"--spark-conf {pair!r}: expected KEY=VALUE (e.g. spark.executor.memory=8g)")
        conf[key.strip()] = value
    return conf


def spark_session(master: str | None = None, conf: dict[str, str] | None = None):
    """Get or create the session. `master` defaults to local[2]; `conf` adds to DEFAULT_CONF."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ServetraceError("--engine spark needs pyspark: pip install 'servetrace[spark]'") from None
    if shutil.which("java") is None and not _java_home():
        raise ServetraceError("--engine spark needs a Java 17+ runtime (e.g. apt-get install openjdk-17-jre-headless)")
    if (master or "local").startswith("local"):  # Python tasks (an agent format's reader) run this interpreter
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master or "local[2]").appName("servetrace")
    local = {"spark.driver.memory": local_driver_memory()} if (master or "local").startswith("local") else {}
    for key, value in {**DEFAULT_CONF, **local, **(conf or {})}.items():
        builder = builder.config(key, value)
    with _jvm_stderr() as log:
        try:
            spark = builder.getOrCreate()
        except Exception as exc:  # noqa: BLE001 - py4j and pyspark raise several types
            raise ServetraceError(f"Spark did not start: {_last_line(log) or str(exc).splitlines()[0]}") from None
    spark.sparkContext.setLogLevel("FATAL")  # failures reach Python as exceptions; the JVM need not print them too
    return spark


def checkpoint(frame):
    """`frame` computed now and its lineage cut, so the queries over it plan from its rows. With
    `spark.checkpoint.dir` set (`--spark-conf`, a path every executor and the driver reach: HDFS, S3)
    the rows are written there and survive the loss of an executor; otherwise they are a local
    checkpoint in the executors' block stores, which is cheaper but lost with its executor (a query
    over it then fails): on a cluster whose executors come and go (preemption, dynamic allocation),
    set the directory."""
    if frame.sparkSession.sparkContext._jsc.sc().getCheckpointDir().isDefined():
        return frame.checkpoint(eager=True)
    return frame.localCheckpoint(eager=True)


def local_driver_memory(total: int | None = None) -> str:
    """The driver heap on a local master, which runs every task as well as planning every query:
    a quarter of this machine's memory (`total` bytes), from 4 to 16 GB. A fit's query plans alone
    take up to ~3 GB of it whatever the trace's size, so 4 GB left little for the tasks' rows."""
    if total is None:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{min(16, max(4, round(total / 4 / 2**30)))}g"


@contextlib.contextmanager
def _jvm_stderr() -> Iterator[IO[bytes]]:
    """The JVM a SparkSession starts inherits this process's stderr, and writes its startup
    warnings there (a loopback hostname, log4j's profile, native libraries) before a one-line
    error could: it gets a file of its own instead (unlinked, gone with the JVM)."""
    log = tempfile.TemporaryFile()
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(log.fileno(), 2)
    try:
        yield log
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _last_line(log: IO[bytes]) -> str:
    log.seek(0)
    lines = [ln.strip() for ln in log.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _java_home() -> bool:
    import os

    return bool(os.environ.get("JAVA_HOME"))
