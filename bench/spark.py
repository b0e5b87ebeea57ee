"""`make bench-spark`: the stages on local Spark against DuckDB, side by side on one trace.

    python -m bench.spark [--rows 10000000,100000000] [--schema generic] [--master local[2]]

Per size: the trace is made (cached as `make bench` caches it) and ingested once; then
`servetrace characterize` runs with the ingest reused, once per engine, as a whole process. Reported:
wall seconds of the stages (the command's own `timings_s`) and of the whole process, and the peak
RSS of the process tree (in local mode the Spark driver and its executors are one JVM, a child of
the Python process, so the tree holds both). Writes bench/spark-results.json and prints a table.
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
    ap.add_argument("--driver-memory", default="4g")
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
        for engine, extra in (("duckdb", []), ("spark", ["--engine", "spark", "--spark-master", args.master,
                                                         "--spark-conf", f"spark.driver.memory={args.driver_memory}"])):
            run = run_measured([*SERVETRACE, "characterize", str(path), "--out", str(work), "--quiet", "--json", *extra])
            timings = json_tail(run.stdout).get("timings_s", {}) if run.ok else {}
            row[engine] = {"ok": run.ok, "error": None if run.ok else run.error_line(), "wall_s": round(run.wall_s, 2),
                           "stages_s": timings.get("stages"), "peak_rss_mb": round(run.peak_rss / 2**20)}
        d, s = row["duckdb"], row["spark"]
        row["stages_ratio"] = round(s["stages_s"] / d["stages_s"], 2) if s["stages_s"] and d["stages_s"] else None
        row["load_end"] = list(os.getloadavg())
        rows_out.append(row)
        print(f"{path.stem}: stages duckdb {d['stages_s']} s / {d['peak_rss_mb']} MB, spark {s['stages_s']} s / "
              f"{s['peak_rss_mb']} MB (x{row['stages_ratio']})" + ("" if s["ok"] else f"; spark failed: {s['error']}"))
        shutil.rmtree(work, ignore_errors=True)
    write_json(args.out, {"master": args.master, "schema": args.schema, "runs": rows_out})
    return rows_out


if __name__ == "__main__":
    main()
