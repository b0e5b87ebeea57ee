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
import json
import re
import tempfile
from pathlib import Path

from bench.measure import REPO

SAMPLE = REPO / "data" / "samples" / "burstgpt_sample.csv"
MOONCAKE = REPO.parent / "shared" / "data" / "mooncake" / "synthetic_trace.jsonl"


def exchanges(plan) -> list[tuple[str, str]]:
    """(partitioning, what feeds it) per shuffle or broadcast exchange in a physical plan (a JVM
    SparkPlan), walking its tree but not into the cached tables it reads (theirs are listed under
    their own files) nor into subqueries."""
    out: list[tuple[str, str]] = []

    def walk(node) -> None:
        name = node.nodeName()
        if name == "AdaptiveSparkPlan":  # the physical plan with its exchanges, before adaptive stages
            return walk(node.initialPlan())
        if name in ("InMemoryTableScan", "ReusedExchange", "TableCacheQueryStage"):
            return
        if name.endswith("QueryStage"):
            return walk(node.plan())
        if "Exchange" in name:
            child = node.children().apply(0)
            while child.nodeName().startswith(("WholeStageCodegen", "InputAdapter")):
                child = child.children().apply(0)
            feeds = child.nodeName()
            if feeds in ("HashAggregate", "ObjectHashAggregate", "SortAggregate") and "partial_" in child.toString():
                feeds = "partial aggregate"
            mode = node.outputPartitioning().toString() if name == "Exchange" else node.mode().toString()
            entry = (re.sub(r"#\d+L?", "", re.sub(r", \d+\)$", ")", mode)).split("\n")[0][:90], feeds)
            if entry not in out:
                out.append(entry)
        children = node.children()
        for i in range(children.size()):
            walk(children.apply(i))

    walk(plan)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.spark_plans", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trace", type=Path, default=SAMPLE)
    ap.add_argument("--reuse-trace", type=Path, default=MOONCAKE)
    ap.add_argument("--dump", type=Path, help="also write each file's physical plan (text) to this JSON file")
    args = ap.parse_args(argv)
    from servetrace.bundle import fit_sql
    from servetrace.ingest import ingest_trace
    from servetrace.reuse.aggregates import analyze_on
    from servetrace.settings import Settings
    from servetrace.spark.connection import SparkConnection
    from servetrace.spark.session import spark_session
    from servetrace.stages.engine import Engine

    plans: dict[str, list[tuple[str, str]]] = {}
    raw: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ingest_trace(args.trace, Path(tmp) / "fit")
        engine = Engine("spark")
        original = SparkConnection.run_sql

        def patched(self, name, kind):
            original(self, name, kind)
            from servetrace.spark.transpile import sql_file, to_spark_steps

            *_, (_, final) = to_spark_steps(name, sql_file(name), self.variables)
            plan = self.spark.sql(final)._jdf.queryExecution().executedPlan()
            raw[name] = plan.toString()
            cached = plan.nodeName() == "AdaptiveSparkPlan" and plan.initialPlan().nodeName() == "InMemoryTableScan"
            plans[name] = exchanges(plan.initialPlan().relation().cachedPlan() if cached else plan)

        SparkConnection.run_sql = patched
        try:
            fit_sql.fit_file(Path(tmp) / "fit" / "requests.parquet", Settings(), engine)
            if args.reuse_trace.exists():
                ingest_trace(args.reuse_trace, Path(tmp) / "reuse")
                analyze_on(SparkConnection(spark_session(), Path(tmp) / "reuse" / "requests.parquet"))
        finally:
            SparkConnection.run_sql = original
    if args.dump:
        args.dump.write_text(json.dumps(raw, indent=1), encoding="utf-8")
    print("| file | exchanges (partitioning <- what feeds it) |\n|---|---|")
    for name, found in plans.items():
        shown = "; ".join(f"`{p}` <- {f}" for p, f in found) or "none"
        print(f"| `{name}` | {shown} |")


if __name__ == "__main__":
    main()
