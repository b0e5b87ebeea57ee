"""`make bench-spark`: the stages on local Spark against DuckDB, side by side on one trace.

    python -m bench.spark [--rows 10000000,100000000] [--schema generic] [--master local[2]]

Per size: the trace is made (cached as `make bench` caches it) and ingested by each engine (whole
process: wall seconds and peak RSS); then
`servetrace characterize` runs with the ingest reused, once per engine, as a whole process. Reported:
wall seconds of the stages (the command's own `timings_s`) and of the whole process, and the peak
RSS of the process tree (in local mode the Spark driver and its executors are one JVM, a child of
the Python process, so the tree holds both; CPU seconds are what the process and the children it waited for used). Writes bench/spark-results.json and prints a table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from bench import traces
from bench.commands import SERVETRACE, json_tail
from bench.measure import run_measured
from servetrace.io import write_json


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(prog="python -m bench.spark", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=_ints, default=[10_000_000, 100_000_000])
    ap.add_argument("--schema", choices=sorted(traces.SCHEMAS), default="generic")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default=None,
                    help="the driver heap (default: a local master's, a quarter of the machine's memory, 4-16 GB)")
    ap.add_argument("--data-dir", type=Path, default=traces.REPO / "data" / "bench")
    ap.add_argument("--out", type=Path, default=traces.REPO / "bench" / "spark-results.json")
    args = ap.parse_args(argv)
    source = traces.trace_source("auto")
    rows_out = []
    for size in args.rows:
        path, _ = traces.ensure_trace(args.data_dir, args.schema, size, source)
        work = args.data_dir / "work-spark" / path.stem
        shutil.rmtree(work, ignore_errors=True)
        ingest = run_measured([*SERVETRACE, "ingest", str(path), "--out", str(work)])
        if not ingest.ok:
            sys.exit(f"bench: ingest of {path} failed: {ingest.error_line()}")
        row = {"trace": path.stem, "rows": size, "load_start": list(os.getloadavg())}
        spark_args = ["--engine", "spark", "--spark-master", args.master]
        if args.driver_memory:
            spark_args += ["--spark-conf", f"spark.driver.memory={args.driver_memory}"]
        landed = run_measured([*SERVETRACE, "ingest", str(path), "--out", str(work / "spark-ingest"), *spark_args])
        row["ingest"] = {"duckdb": {"wall_s": round(ingest.wall_s, 2), "cpu_s": round(ingest.cpu_s, 2),
                                    "peak_rss_mb": round(ingest.peak_rss / 2**20)},
                         "spark": {"ok": landed.ok, "error": None if landed.ok else landed.error_line(),
                                   "wall_s": round(landed.wall_s, 2), "cpu_s": round(landed.cpu_s, 2),
                                   "peak_rss_mb": round(landed.peak_rss / 2**20)}}
        row["ingest"]["wall_ratio"] = round(landed.wall_s / ingest.wall_s, 2) if landed.ok else None
        # each engine's characterize reuses its own ingest (Spark reuses only a table it wrote, a directory of parts)
        for engine, extra, out in (("duckdb", [], work), ("spark", spark_args, work / "spark-ingest")):
            run = run_measured([*SERVETRACE, "characterize", str(path), "--out", str(out), "--quiet", "--json", *extra])
            timings = json_tail(run.stdout).get("timings_s", {}) if run.ok else {}
            row[engine] = {"ok": run.ok, "error": None if run.ok else run.error_line(), "wall_s": round(run.wall_s, 2),
                           "cpu_s": round(run.cpu_s, 2), "stages_s": timings.get("stages"), "peak_rss_mb": round(run.peak_rss / 2**20)}
        d, s = row["duckdb"], row["spark"]
        row["stages_ratio"] = round(s["stages_s"] / d["stages_s"], 2) if s["stages_s"] and d["stages_s"] else None
        row["load_end"] = list(os.getloadavg())
        rows_out.append(row)
        i = row["ingest"]
        print(f"{path.stem}: ingest duckdb {i['duckdb']['wall_s']} s / {i['duckdb']['peak_rss_mb']} MB, spark "
              f"{i['spark']['wall_s']} s / {i['spark']['peak_rss_mb']} MB (x{i['wall_ratio']})")
        print(f"{path.stem}: stages duckdb {d['stages_s']} s / {d['peak_rss_mb']} MB, spark {s['stages_s']} s / "
              f"{s['peak_rss_mb']} MB (x{row['stages_ratio']})" + ("" if s["ok"] else f"; spark failed: {s['error']}"))
        shutil.rmtree(work, ignore_errors=True)
    write_json(args.out, {"master": args.master, "schema": args.schema, "runs": rows_out})
    return rows_out


if __name__ == "__main__":
    main()
