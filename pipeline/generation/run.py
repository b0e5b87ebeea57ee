"""`servetrace generate`: load the bundle, generate, write; file access only here."""

from __future__ import annotations

import time
from pathlib import Path

from servetrace.bundle import load_bundle
from servetrace.generation.compose import prepare
from servetrace.generation.plan import check_size
from servetrace.generation.options import GenerateOptions
from servetrace.generation.write import output_format, write_generated
from servetrace.outputs import bundle_path as bundle_file
from servetrace.io import check_output
from servetrace.options import check_generate_size


def generate_file(bundle_path: str | Path, out: str | Path, options: GenerateOptions = GenerateOptions(),
                  fmt: str | None = None) -> dict:
    out = check_output(out, "file")
    fmt = output_format(out, fmt)
    bundle = load_bundle(bundle_path)
    check_generate_size(bundle, options.duration_s, options.rate_scale, options.rate_rps, options.rate_fn)
    t0, c0 = time.perf_counter(), time.process_time()
    gen = prepare(bundle, options)
    gen.scratch_beside = out
    check_size(gen.summary["expected_requests"], fmt, out)
    summary = gen.summary
    # No timestamps or timings in the file: the same inputs give the same bytes.
    # The bundle's file name, not its location: the bytes must not depend on where files live.
    source = bundle_file(bundle_path)
    meta = {"servetrace.format": "synthetic", "servetrace.source": source.name,
            "servetrace.bundle_sha256": bundle["source"].get("sha256") or "",
            "servetrace.generate": summary["options"]}
    write_generated(gen.blocks(), out, fmt, meta)
    t1 = time.perf_counter()
    # CPU seconds of generation + write (every thread of the process): a shared machine's load moves them little
    summary.update({"out": str(out), "format": fmt, "generate_s": t1 - t0, "generate_cpu_s": time.process_time() - c0,
                    "requests_per_s": summary["requests"] / (t1 - t0) if t1 > t0 else None})
    return summary
