"""`make bench` / `make bench-large`: every figure of the bench issue in one run.

    python -m bench.run [--large] [--rows 1000000,10310000] [--repeat 3] [--schemas burstgpt,generic]

Traces (cached under --data-dir), then per trace: the DuckDB proxy, `servetrace ingest`,
`servetrace characterize` (fresh, then with the ingest reused) and the pandas baseline; a small
real trace characterized beside a bare `import duckdb, polars` + one query (bench/small_trace.py); then a
ServeGen pool imported as a bundle, the bundle's load time and `servetrace generate` throughput;
generation of 10 M, 100 M and 1 B requests: rate and peak RSS. A figure whose command is not available is skipped with the reason recorded. Writes
RESULTS_DIR/results.json and RESULTS_DIR/RESULTS.md (with --merge, the figures measured now replace
the same figures of the results.json there; the others are kept).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shlex
import shutil
import sys
from pathlib import Path

from bench import generation, markdown, results, small_trace, traces
from bench.measure import Measurement, skipped
from bench.trace_bench import PARTS, measure_trace
from servetrace import io as servetrace_io
from servetrace.io import read_json, write_json, write_text

LARGE_ROWS = 100_000_000
LARGE_REQUESTS = 1_000_000_000
DEFAULT_POOL = traces.REPO.parent / "shared" / "data" / "servegen" / "language" / "m-large"
# pandas holds the whole trace as Python objects: past this it would only measure swapping.
PANDAS_MAX_ROWS = 20_000_000


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=_ints, default=[1_000_000, results.FULL_BURSTGPT_ROWS],
                    help="trace sizes, comma-separated (default 1000000,10310000)")
    ap.add_argument("--large", action="store_true", help=f"add a {LARGE_ROWS:,}-row trace (run once)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the median counts (default 3)")
    ap.add_argument("--schemas", default="burstgpt,generic",
                    help="trace schemas: burstgpt (v1) and/or generic (client ids, per-client stages)")
    ap.add_argument("--trace-source", choices=["auto", "shared", "own"], default="auto",
                    help="make traces with ../shared/tools/make_bench_trace.py (auto: when present) or our own generator")
    ap.add_argument("--pool", type=Path, default=DEFAULT_POOL, help="ServeGen pool for the generation figures")
    ap.add_argument("--generate-hours", type=lambda s: [float(x) for x in s.split(",") if x.strip()], default=[1.0, 6.0],
                    help="durations to generate from the ServeGen pool, in hours (default 1,6; empty skips "
                         "the pool import, bundle load and these figures)")
    ap.add_argument("--generate-requests", type=_ints, default=[10_000_000, 100_000_000, LARGE_REQUESTS],
                    help="sized generation figures: requests to generate from the Azure conversation bundle "
                         "(default 10000000,100000000,1000000000; empty skips them)")
    ap.add_argument("--only", type=lambda s: tuple(x for x in s.split(",") if x), default=PARTS,
                    help=f"per-trace figures to measure (default all: {','.join(PARTS)})")
    ap.add_argument("--no-generate", action="store_true", help="skip the pool import, bundle load and generate")
    ap.add_argument("--no-small", action="store_true",
                    help="skip the small real trace (characterize vs a bare duckdb + polars one-liner)")
    ap.add_argument("--small-trace", type=Path, default=None,
                    help="the small trace (default: the Azure 2023 conversation trace of ../shared, else the sample)")
    ap.add_argument("--reuse-blocks", type=int, default=10_000_000,
                    help="KV blocks of the LRU prefix-cache curve figure (0 skips it; default 10 M)")
    ap.add_argument("--data-dir", type=Path, default=traces.REPO / "data" / "bench", help="trace cache and scratch")
    ap.add_argument("--results-dir", type=Path, default=traces.REPO / "bench", help="where results.json and RESULTS.md go")
    ap.add_argument("--merge", action="store_true",
                    help="keep the figures of RESULTS_DIR/results.json not measured now (the ones measured now replace theirs)")
    ap.add_argument("--render-only", action="store_true",
                    help="measure nothing: rewrite RESULTS.md from RESULTS_DIR/results.json (after editing the notes)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    args.schemas = [s for s in args.schemas.split(",") if s]
    unknown = set(args.schemas) - set(traces.SCHEMAS)
    if unknown:
        ap.error(f"--schemas: unknown {sorted(unknown)}; choose from {sorted(traces.SCHEMAS)}")
    if set(args.only) - set(PARTS):
        ap.error(f"--only: unknown {sorted(set(args.only) - set(PARTS))}; choose from {list(PARTS)}")
    args.sizes = sorted(set(args.rows + ([LARGE_ROWS] if args.large else [])))
    args.generate_requests = sorted(set(args.generate_requests))
    return args


def _say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def bench_traces(args: argparse.Namespace, source: str, work: Path) -> tuple[list[Measurement], list[dict]]:
    found, made = [], []
    for size in args.sizes:
        for schema in args.schemas:
            path, new = traces.ensure_trace(args.data_dir, schema, size, source)
            _say(f"{'made' if new else 'cached'} {path.name}")
            rows = traces.count_rows(path)
            made.append({"name": path.stem, "schema": schema, "rows": rows, "path": str(path),
                         "mb": round(path.stat().st_size / 2**20, 1), "source": source, "made_now": new})
            repeat = 1 if size >= LARGE_ROWS else args.repeat
            _say(f"measuring {path.name} ({rows:,} rows, {repeat} run(s) each)")
            parts = args.only if rows <= PANDAS_MAX_ROWS else tuple(p for p in args.only if p != "pandas")
            ms = measure_trace(path, rows, schema, work / path.stem, repeat, parts)
            if parts != args.only:
                ms.append(skipped("pandas baseline", f"not run above {PANDAS_MAX_ROWS:,} rows: pandas needs "
                                  "the whole trace in memory", path.stem, rows))
            found += ms
            shutil.rmtree(work / path.stem, ignore_errors=True)
    return found, made


def bench_generation(args: argparse.Namespace, work: Path) -> list[Measurement]:
    if args.no_generate:
        return [skipped("generate", "--no-generate given")]
    found = []
    if args.generate_hours:
        _say(f"importing {args.pool} as a bundle")
        imported, bundle = generation.pool_bundle(args.pool, work, 1)  # a one-off cost, not a target: once
        _say("bundle load and generate")
        found += [imported, generation.bundle_load(bundle, args.repeat),
                  *generation.generate_throughput(bundle, [h * 3600 for h in args.generate_hours], work, args.repeat)]
    if args.generate_requests:
        _say(f"sized generation: {', '.join(f'{n:,}' for n in args.generate_requests)} requests")
        found += generation.generate_sized(args.generate_requests, work, args.repeat)
    return found


def bench_reuse(args: argparse.Namespace) -> list[Measurement]:
    if args.reuse_blocks <= 0:
        return [skipped("lru curve", "--reuse-blocks 0 given")]
    _say(f"LRU prefix-cache curve over {args.reuse_blocks:,} blocks")
    return [generation.lru_curve(args.reuse_blocks, args.data_dir, args.repeat)]


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.render_only:
        doc = read_json(args.results_dir / "results.json")
        write_text(args.results_dir / "RESULTS.md", markdown.render(doc))
        return doc
    # the package's bytecode, as pip writes it at install: where PYTHONDONTWRITEBYTECODE is set (and in
    # a fresh clone) every run would otherwise compile servetrace's ~0.9 MB of source (~0.25 s of CPU)
    compileall.compile_dir(Path(servetrace_io.__file__).resolve().parent, quiet=1)
    source = traces.trace_source(args.trace_source)
    if args.trace_source == "shared" and source != "shared":
        _say(f"{traces.SHARED_TOOL} absent: using our own generator")
    work = args.data_dir / "work"
    load_start = list(os.getloadavg())
    measured, made = bench_traces(args, source, work)
    if not args.no_small:
        _say("small real trace: characterize vs a bare duckdb + polars one-liner, side by side")
        measured += small_trace.measure_small(work, args.repeat, args.small_trace)
    measured += bench_generation(args, work)
    measured += bench_reuse(args)
    shutil.rmtree(work, ignore_errors=True)
    run = {"command": "python -m bench.run " + shlex.join(argv if argv is not None else sys.argv[1:]),
           "repeat": args.repeat, "sizes": args.sizes, "parts": list(args.only), "trace_source": source,
           "load": {"start": load_start, "end": list(os.getloadavg())}}
    figures, sizes = [m.to_dict() for m in measured], args.sizes
    if args.merge and (args.results_dir / "results.json").exists():
        figures, made, sizes, run["merged"] = results.merged(read_json(args.results_dir / "results.json"), figures,
                                                              made, sizes)
        run["sizes"] = sizes  # the document's sizes are the merged ones (a later --merge reads them)
    doc = results.document(figures, made, sizes, generation.SERVEGEN_ANCHOR, run)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    write_json(args.results_dir / "results.json", doc)
    write_text(args.results_dir / "RESULTS.md", markdown.render(doc))
    _say(f"wrote {args.results_dir / 'results.json'} and {args.results_dir / 'RESULTS.md'}")
    for t in doc["targets"]:
        _say(f"{'MET   ' if t['met'] else 'MISSED' if t['met'] is False else 'n/a   '} {t['target']} "
             f"[{t['where']}]: {t['value']}")
    return doc


if __name__ == "__main__":
    main()
