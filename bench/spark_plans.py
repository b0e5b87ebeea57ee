"""The shuffles in Spark's own plans of the set-based SQL the bundle fit (sql/fit/) and the block
reuse analysis (sql/reuse/) run: bench/scale-out.md's tables are read from this.

    python -m bench.spark_plans [--trace CSV] [--reuse-trace JSONL]

Each file's query is planned on local Spark (not run: `queryExecution().executedPlan()`, the
physical plan before adaptive execution changes it) while the fit and the reuse analysis run
over small traces (the default sample; Mooncake's shared trace when present). Printed per file:
its exchanges, each with its partitioning and what feeds it (a partial aggregate ships keys only;
anything else ships rows).
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from bench.measure import REPO

SAMPLE = REPO / "data" / "samples" / "burstgpt_sample.csv"
MOONCAKE = REPO.parent / "shared" / "data" / "mooncake" / "synthetic_trace.jsonl"
_EXCHANGE = re.compile(r"Exchange (\w+(?:\([^)]*\))?)")


def exchanges(plan: str) -> list[tuple[str, str]]:
    """(partitioning, what feeds it) per Exchange in a physical plan's text."""
    lines = plan.splitlines()
    out = []
    for i, line in enumerate(lines):
        found = _EXCHANGE.search(line)
        if not found or "ReusedExchange" in line:
            continue
        child = lines[i + 1].strip(" +-:") if i + 1 < len(lines) else ""
        feeds = "partial aggregate" if child.startswith(("HashAggregate", "ObjectHashAggregate", "SortAggregate")) \
            and "partial_" in child else child.split(" ", 1)[0].split("(")[0]
        part = re.sub(r"#\d+L?", "", found.group(1))
        out.append((re.sub(r", \d+\)$", ")", part), feeds))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.spark_plans", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trace", type=Path, default=SAMPLE)
    ap.add_argument("--reuse-trace", type=Path, default=MOONCAKE)
    args = ap.parse_args(argv)
    from servetrace.bundle import fit_sql
    from servetrace.ingest import ingest_trace
    from servetrace.reuse.aggregates import analyze_on
    from servetrace.settings import Settings
    from servetrace.spark.connection import SparkConnection
    from servetrace.spark.session import spark_session
    from servetrace.stages.engine import Engine

    plans: dict[str, list[tuple[str, str]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ingest_trace(args.trace, Path(tmp) / "fit")
        engine = Engine("spark")
        original = SparkConnection.run_sql

        def patched(self, name, kind):
            original(self, name, kind)
            from servetrace.spark.transpile import sql_file, to_spark_steps

            *_, (_, final) = to_spark_steps(name, sql_file(name), self.variables)
            plans[name] = exchanges(self.spark.sql(final)._jdf.queryExecution().executedPlan().toString())

        SparkConnection.run_sql = patched
        try:
            fit_sql.fit_file(Path(tmp) / "fit" / "requests.parquet", Settings(), engine)
            if args.reuse_trace.exists():
                ingest_trace(args.reuse_trace, Path(tmp) / "reuse")
                analyze_on(SparkConnection(spark_session(), Path(tmp) / "reuse" / "requests.parquet"))
        finally:
            SparkConnection.run_sql = original
    print("| file | exchanges (partitioning <- what feeds it) |\n|---|---|")
    for name, found in plans.items():
        shown = "; ".join(f"`{p}` <- {f}" for p, f in found) or "none"
        print(f"| `{name}` | {shown} |")


if __name__ == "__main__":
    main()
