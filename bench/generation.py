"""Generation figures: a ServeGen pool imported as a bundle, the bundle's load time, and
`servetrace generate` throughput, against ServeGen's published figure (its own code is not
installable here: 0.59 M requests for one hour of m-large in 13 s)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pyarrow.parquet as pq

from bench.commands import SERVETRACE, available, json_tail
from bench.measure import REPO, Measurement, measure, skipped

SERVEGEN_ANCHOR = {
    "requests": 590_000,
    "duration_s": 3600,
    "wall_s": 13.0,
    "requests_per_s": 590_000 / 13.0,
    "pool": "language/m-large",
    "source": "ServeGen's published figure for generate_workload (not run here: ServeGen is not "
              "installable on this machine)",
}
IMPORT_BY_LIBRARY = ("from servetrace.bundle import save_bundle; "
                     "from servetrace.bundle.servegen_import import import_servegen_pool; "
                     "import sys; save_bundle(sys.argv[2], import_servegen_pool(sys.argv[1]))")


def pool_bundle(pool: Path, work: Path, repeat: int) -> tuple[Measurement, Path | None]:
    """Import the pool into a bundle (timed as a whole process): the CLI import when it exists,
    else the library import run as a script. Returns the measurement and the bundle path."""
    name = f"bundle import ({pool.parent.name}/{pool.name})"
    if not pool.is_dir():
        return skipped(name, f"{pool}: ServeGen pool absent"), None
    out = work / "pool_bundle"
    bundle = out / "bundle.json"

    def fresh(i):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)

    via = "servetrace ingest --format servegen"
    m = measure(name, lambda i: [*SERVETRACE, "ingest", str(pool), "--format", "servegen", "--out", str(out)],
                repeat, before=fresh)
    if m.status != "ok" or not bundle.exists():  # the CLI import has not landed yet: the library's
        cli_error = m.reason or "no bundle.json written"
        via = "library import_servegen_pool + save_bundle"
        m = measure(name, lambda i: [sys.executable, "-c", IMPORT_BY_LIBRARY, str(pool), str(bundle)],
                    repeat, before=fresh)
        m.extra["cli_error"] = cli_error
    m.extra["via"] = via
    if m.status != "ok" or not bundle.exists():
        if m.status == "ok":
            m.status, m.reason = "failed", "no bundle.json written"
        return m, None
    m.extra["bundle_mb"] = round(bundle.stat().st_size / 2**20, 2)
    return m, bundle


def bundle_load(bundle: Path | None, repeat: int) -> Measurement:
    """load_bundle's own time in a fresh process each run (the figure the < 1 s target is about)."""
    name = "bundle load"
    if bundle is None:
        return skipped(name, "no bundle: the pool import did not run")
    m = Measurement(name)
    inner = []
    for _ in range(repeat):
        one = measure(name, lambda i: [sys.executable, "-m", "bench.load_bundle", str(bundle)], 1)
        if one.status != "ok":
            return one
        inner.append(json.loads(one.stdout.strip().splitlines()[-1]))
        m.wall_s.append(inner[-1]["load_s"])
        m.peak_rss += one.peak_rss
        m.extra.setdefault("process_wall_s", []).append(round(one.wall_s[0], 4))
    m.extra.update({"clients": inner[-1]["clients"], "span_s": inner[-1]["span_s"],
                    "note": "wall_s is load_bundle alone (read, parse, validate), timed inside a fresh process"})
    return m


def generate_throughput(bundle: Path | None, durations: list[float], work: Path, repeat: int) -> list[Measurement]:
    """`servetrace generate BUNDLE --duration D --out x.parquet`: requests/s of the whole process and,
    from the command's own summary, of generation + Parquet write alone."""
    results = []
    for duration in durations:
        name = f"generate {duration / 3600:g} h"
        if bundle is None:
            results.append(skipped(name, "no bundle: the pool import did not run"))
            continue
        if not available("generate"):
            results.append(skipped(name, "`servetrace generate` is not available yet"))
            continue
        out = work / "generated.parquet"
        m = measure(name, lambda i: [*SERVETRACE, "generate", str(bundle), "--out", str(out), "--duration",
                                     str(duration), "--seed", str(i), "--json"], repeat)
        if m.status == "ok":
            rows = pq.ParquetFile(out).metadata.num_rows
            summary = json_tail(m.stdout)
            m.rows = rows
            inner = summary.get("requests_per_s")
            m.extra.update({
                "duration_s": duration,
                "requests": rows,
                "requests_per_s_process": round(rows / m.median_s),
                "requests_per_s_inner": round(inner) if inner else None,
                "generate_s": summary.get("generate_s"),
                "write_s": summary.get("write_s"),
                "x_servegen": round((inner or rows / m.median_s) / SERVEGEN_ANCHOR["requests_per_s"], 1),
            })
            out.unlink(missing_ok=True)
        results.append(m)
    return results


AZURE_CONV = REPO.parent / "shared" / "data" / "azure2023" / "AzureLLMInferenceTrace_conv.csv"


def sized_bundle(work: Path) -> tuple[Path | None, str]:
    """The bundle sized generation runs from: the Azure 2023 conversation trace characterized once
    (untimed), so its fitted arrival model (the Cox modulation) is part of what is measured."""
    out = work / "sized_bundle"
    bundle = out / "bundle.json"
    if not bundle.exists():
        if not AZURE_CONV.exists():
            return None, f"{AZURE_CONV} absent"
        done = measure("characterize (untimed)", lambda i: [*SERVETRACE, "characterize", str(AZURE_CONV), "--out",
                                                           str(out), "--quiet"], 1)
        if done.status != "ok" or not bundle.exists():
            return None, f"characterize failed: {done.reason}"
    return bundle, ""


def generate_sized(sizes: list[int], work: Path, repeat: int) -> list[Measurement]:
    """`servetrace generate BUNDLE --rate-scale X --out x.parquet` with X chosen so the expected
    count is each size (more load with the same burstiness over the source's hour): requests/s
    of generation + Parquet write (the command's own summary) and of the whole process, and peak
    RSS of the process, which must stay bounded whatever the size (the output streams). The 1-min
    load average before and after each figure is kept beside it: the machine may be shared, and
    the CPU-second rate is the one that load does not move much."""
    from servetrace.bundle import load_bundle
    from servetrace.generation.compose import prepare
    from servetrace.settings import GenerateOptions

    bundle, why = sized_bundle(work)
    results = []
    base = prepare(load_bundle(bundle), GenerateOptions()).summary["expected_requests"] if bundle else None
    model = (load_bundle(bundle).get("arrival_model") or {}).get("chosen", "renewal") if bundle else None
    for size in sizes:
        name = f"generate {size / 1e6:g} M requests"
        if bundle is None:
            results.append(skipped(name, why))
            continue
        out = work / "sized.parquet"
        scale = size / base
        load_before = os.getloadavg()[0]
        m = measure(name, lambda i: [*SERVETRACE, "generate", str(bundle), "--out", str(out), "--rate-scale",
                                     repr(scale), "--seed", str(i), "--json"], 1 if size >= 100_000_000 else repeat)
        m.extra.update({"requested": size, "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                        "nice": os.nice(0)})
        if m.status == "ok":
            summary = json_tail(m.stdout)
            m.rows = int(summary.get("requests") or pq.ParquetFile(out).metadata.num_rows)
            inner = summary.get("requests_per_s")
            m.extra.update({"rate_scale": round(scale, 3), "arrival_model": model,
                            "bundle": "Azure 2023 conversation, characterized",
                            "requests_per_s_process": round(m.rows / m.median_s),
                            "requests_per_s_inner": round(inner) if inner else None,
                            "requests_per_s_cpu": round(m.rows / m.to_dict()["cpu_s"]) if m.cpu_s else None,
                            "requests_per_s_cpu_inner": (round(m.rows / summary["generate_cpu_s"])
                                                         if summary.get("generate_cpu_s") else None),
                            "output_mb": round(out.stat().st_size / 2**20, 1)})
        out.unlink(missing_ok=True)
        results.append(m)
    return results


def lru_curve(blocks: int, data_dir: Path, repeat: int) -> Measurement:
    """`bench.reuse_bench`: the LRU curve's own time (read the blocks, stack distances or SHARDS,
    the curve), timed inside a fresh process each run; the trace is made once, untimed."""
    name = "lru curve"
    cmd = lambda i: [sys.executable, "-m", "bench.reuse_bench", "--blocks", str(blocks), "--out", str(data_dir)]
    first = measure(name, cmd, 1)  # makes (or finds) the cached trace
    if first.status != "ok":
        return first
    m = Measurement(name, rows=blocks)
    for _ in range(repeat):
        one = measure(name, cmd, 1)
        if one.status != "ok":
            return one
        inner = json.loads(one.stdout.strip().splitlines()[-1])
        m.wall_s.append(inner["lru_curve_s"])
        m.peak_rss += one.peak_rss
    m.extra.update({"blocks": inner["blocks"], "method": inner["method"], "sample_rate": inner["sample_rate"],
                    "infinite_hit_rate": inner["infinite_hit_rate"],
                    "note": "wall_s is the curve alone (read_refs + hit_curve), timed inside a fresh process"})
    return m
