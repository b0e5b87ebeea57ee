"""From measurements to results.json: ratios to the proxy and the baseline, scaling, the targets."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata

import psutil

from bench.traces import REPO

SCHEMA_ID = "servetrace.bench/v1"
FULL_BURSTGPT_ROWS = 10_310_000
MB = 2**20


def machine() -> dict:
    versions = {}
    for pkg in ("duckdb", "polars", "pyarrow", "pandas", "numpy", "scipy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(), "versions": versions}


def git_state() -> dict:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""
    return {"commit": git("rev-parse", "HEAD") or None, "dirty_files": len(git("status", "--porcelain").splitlines())}


def with_ratios(rows: list[dict]) -> list[dict]:
    """Each figure's median over the same trace's DuckDB proxy and pandas baseline medians."""
    ref = {(r["trace"], r["name"]): r for r in rows if r["median_s"]}
    out = []
    for r in rows:
        r = dict(r)
        proxy, pandas = ref.get((r["trace"], "duckdb proxy")), ref.get((r["trace"], "pandas baseline"))
        if r["median_s"] and r["trace"]:
            r["x_proxy"] = _ratio(r, proxy, "median_s")
            r["x_pandas"] = _ratio(r, pandas, "median_s")
            r["x_proxy_cpu"] = _ratio(r, proxy, "cpu_s")
        out.append(r)
    return out


def _ratio(a: dict | None, b: dict | None, key: str) -> float | None:
    return round(a[key] / b[key], 2) if a and b and a.get(key) and b.get(key) else None


def scaling(rows: list[dict]) -> list[dict]:
    """Time vs rows per command and schema; the exponent b of t ~ rows^b between consecutive sizes
    (1 = linear; below 1 while fixed start-up cost still weighs)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["trace"] and r["median_s"] and r["rows"]:
            groups.setdefault((r["name"], r.get("schema")), []).append(r)
    found = []
    for (name, schema), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        rs = sorted(rs, key=lambda r: r["rows"])
        if len(rs) < 2:
            continue
        points = [{"rows": r["rows"], "median_s": r["median_s"], "peak_rss_mb": r["peak_rss_mb"]} for r in rs]
        exps = [round(math.log(b["median_s"] / a["median_s"]) / math.log(b["rows"] / a["rows"]), 3)
                for a, b in zip(points, points[1:])]
        found.append({"name": name, "schema": schema, "points": points, "exponents": exps})
    return found


def _at(rows: list[dict], name: str, schema: str, size: int | None) -> dict | None:
    return next((r for r in rows if r["name"] == name and r.get("schema") == schema and r["rows"] == size
                 and r["median_s"]), None)


def _target(tid: str, text: str, value, met: bool | None, where: str, note: str | None = None) -> dict:
    return {"id": tid, "target": text, "value": value, "met": met, "where": where, "note": note}


def _ratio_targets(rows: list[dict], schema: str, size: int) -> list[dict]:
    where = f"{schema} trace, {size:,} rows"
    proxy, ingest = _at(rows, "duckdb proxy", schema, size), _at(rows, "servetrace ingest", schema, size)
    char, stages = _at(rows, "servetrace characterize", schema, size), _at(rows, "characterize, ingest reused", schema, size)
    pandas = _at(rows, "pandas baseline", schema, size)

    def cpu(a, b):
        value = _ratio(a, b, "cpu_s")
        return f"on CPU seconds: {value}" if value is not None else None

    found = []
    for tid, text, a, b, limit in (
        ("ingest_vs_proxy", "ingest <= 1.5x the DuckDB proxy", ingest, proxy, 1.5),
        ("characterize_vs_proxy", "characterize (all stages and outputs) <= 3x the DuckDB proxy", char, proxy, 3.0),
    ):
        value = _ratio(a, b, "median_s")
        found.append(_target(f"{tid}[{schema}]", text, value, None if value is None else value <= limit, where,
                             cpu(a, b)))
    # The stages as the command clocks them (ingest reused), against the ingest command's wall time;
    # the whole reused run (start-up, bundle fit and report included) in the note.
    stage_s = ((stages or {}).get("timings_s") or {}).get("stages")
    value = round(stage_s / ingest["median_s"], 2) if stage_s and ingest and ingest.get("median_s") else None
    whole = _ratio(stages, ingest, "median_s")
    found.append(_target(f"stages_vs_ingest[{schema}]", "every stage together <= 2x the ingest time", value,
                         None if value is None else value <= 2.0, where,
                         f"stages {stage_s} s (the command's own clock); the whole reused run "
                         f"(start-up, bundle, report) {whole}x" if stage_s else None))
    speedup = _ratio(pandas, char, "median_s")
    found.append(_target(f"characterize_vs_pandas[{schema}]", "characterize >= 3x faster than the pandas baseline",
                         speedup, None if speedup is None else speedup >= 3.0, where, cpu(pandas, char)))
    return found


def _memory_targets(rows: list[dict], sizes: list[int]) -> list[dict]:
    found = []
    for size, limit_mb, label in ((FULL_BURSTGPT_ROWS, 2048, "10m"), (100_000_000, 6144, "100m")):
        if size not in sizes:
            continue
        peaks = [r["peak_rss_mb"] for r in rows if r["rows"] == size and r["peak_rss_mb"]
                 and r["name"] in ("servetrace ingest", "servetrace characterize")]
        value = max(peaks) if peaks else None
        found.append(_target(f"peak_rss_{label}", f"peak RSS <= {limit_mb / 1024:g} GB at {size:,} rows "
                             "(ingest and characterize, process tree)", value,
                             None if value is None else value <= limit_mb, f"{size:,} rows, every schema"))
    return found


def _growth_targets(scale: list[dict]) -> list[dict]:
    found = []
    for s in scale:
        if s["name"] not in ("servetrace ingest", "servetrace characterize"):
            continue
        worst = max(s["exponents"])
        found.append(_target(f"growth[{s['name']}, {s['schema']}]", "time grows no worse than linearly "
                             "(exponent <= 1.1, noise allowed)", worst, worst <= 1.1,
                             f"{s['name']}, {s['schema']}: {s['points'][0]['rows']:,} -> {s['points'][-1]['rows']:,} rows"))
    return found


def _sized_targets(rows: list[dict]) -> list[dict]:
    """Per sized generation: >= 2 M requests/s into Parquet and peak RSS <= 1 GiB. The rate is per
    CPU second of generation + write (the command's own CPU clock; else of the whole process, start-up
    included), which a shared machine's load moves far less than wall-clock rates; those, and the
    whole process's CPU rate, go in the note."""
    found = []
    for r in rows:
        if not r["name"].endswith(" M requests") or r.get("requested") is None:
            continue
        label = f"{r['requested'] / 1e6:g}m"
        rate = (r.get("requests_per_s_cpu_inner") or r.get("requests_per_s_cpu") or r.get("requests_per_s_inner")
                or r.get("requests_per_s_process"))
        load = r.get("load_1min")
        found.append(_target(f"generate_rps_{label}", f"generate >= 2 M requests/s into Parquet ({r['requested']:,})",
                             rate, None if rate is None else rate >= 2e6, r["name"],
                             f"{r.get('arrival_model')} arrivals; per CPU second of "
                             + ("generate + write" if r.get("requests_per_s_cpu_inner") else "the whole process")
                             + f" (whole process {r.get('requests_per_s_cpu')}/s); per wall "
                             f"second: generate + write {r.get('requests_per_s_inner')}/s, whole process "
                             f"{r.get('requests_per_s_process')}/s" + (f" at load {load[0]}-{load[1]}" if load else "")))
        rss = r.get("peak_rss_mb")
        found.append(_target(f"generate_rss_{label}", f"generate peak RSS <= 1 GiB ({r['requested']:,} requests)",
                             rss, None if rss is None else rss <= 1024, r["name"]))
    return found


def _generation_targets(rows: list[dict], anchor: dict) -> list[dict]:
    gens = [r for r in rows if r["name"].startswith("generate") and r["median_s"] and r.get("requested") is None]
    best = max(gens, key=lambda r: r["rows"] or 0) if gens else None
    rate = (best.get("requests_per_s_inner") or best.get("requests_per_s_process")) if best else None
    load = next((r for r in rows if r["name"] == "bundle load" and r["median_s"]), None)
    where = best["name"] if best else "not measured"
    return [
        _target("generate_rps", "generate >= 1 M requests/s into Parquet", rate,
                None if rate is None else rate >= 1e6, where,
                "generation + Parquet write, from the command's own summary (whole-process rate alongside)"),
        _target("generate_vs_servegen", "generate >= 20x ServeGen's generate_workload",
                round(rate / anchor["requests_per_s"], 1) if rate else None,
                None if rate is None else rate / anchor["requests_per_s"] >= 20, where,
                "against ServeGen's published 0.59 M requests / 13 s, not a run here"),
        _target("bundle_load", "bundle load < 1 s for a 147-client, 14-day pool", load["median_s"] if load else None,
                None if load is None else load["median_s"] < 1.0,
                f"{load['clients']}-client, {load['span_s'] / 86400:.3g}-day bundle" if load else "not measured"),
    ]


def _small_targets(rows: list[dict]) -> list[dict]:
    from bench.small_trace import BARE, CHARACTERIZE

    found = []
    for trace in dict.fromkeys(r["trace"] for r in rows if r["name"] in (BARE, CHARACTERIZE)):  # one per small trace
        bare = next((r for r in rows if r["name"] == BARE and r["trace"] == trace and r["median_s"]), None)
        char = next((r for r in rows if r["name"] == CHARACTERIZE and r["trace"] == trace and r["median_s"]), None)
        if bare is None and char is None:
            continue
        where = f"{(char or bare)['trace']}, {(char or bare)['rows']:,} rows" if (char or bare)["rows"] else "small trace"
        value = _ratio(char, bare, "median_s")
        cpu = _ratio(char, bare, "cpu_s")
        found.append(_target("small_vs_bare" + (f"[{trace}]" if found else ""), "characterize of a small real trace "
                             "<= 4x a bare `import duckdb, polars` + one query", value, None if value is None else value <= 4.0,
                             where, f"on CPU seconds: {cpu}; stretch 2x" if cpu is not None else None))
    return found


def targets(rows: list[dict], scale: list[dict], sizes: list[int], anchor: dict) -> list[dict]:
    """Every target of the bench issue, met or not (None: not measured in this run)."""
    ref = max((s for s in sizes if s <= FULL_BURSTGPT_ROWS), default=min(sizes, default=None))
    schemas = sorted({r.get("schema") for r in rows if r.get("schema")})
    found = [t for schema in schemas for t in _ratio_targets(rows, schema, ref)]
    return (found + _small_targets(rows) + _memory_targets(rows, sizes) + _growth_targets(scale)
            + _generation_targets(rows, anchor) + _sized_targets(rows) + _reuse_targets(rows))


def _reuse_targets(rows: list[dict]) -> list[dict]:
    lru = next((r for r in rows if r["name"] == "lru curve" and r["median_s"]), None)
    blocks = lru.get("blocks") if lru else None
    met = None if lru is None or blocks < 10_000_000 else lru["median_s"] <= 10.0
    return [_target("lru_curve_10m", "LRU prefix-cache curve of 10 M blocks <= 10 s", lru["median_s"] if lru else None,
                    met, f"{blocks:,} blocks, {lru.get('method')}" if lru else "not measured",
                    "n/a below 10 M blocks" if lru and blocks < 10_000_000 else None)]


def merged(previous: dict, figures: list[dict], traces: list[dict], sizes: list[int]):
    """`bench.run --merge`: the previous document's figures, traces and sizes, with those measured
    now in place of the same (trace, name); returns (figures, traces, sizes, what was merged)."""
    key = (lambda m: (m.get("trace"), m["name"]))
    before = {key(m) for m in previous["measurements"]}
    figures = [m for m in figures if m["status"] != "skipped" or key(m) not in before]  # not measured: kept
    now = {key(m) for m in figures}
    kept = [m for m in previous["measurements"] if key(m) not in now]
    names = {t["name"] for t in traces}
    return (kept + figures, [t for t in previous.get("traces", []) if t["name"] not in names] + traces,
            sorted(set(previous.get("sizes", [])) | set(sizes)),
            {"previous_command": previous.get("command"), "previous_created_at": previous.get("created_at"),
             "kept": len(kept), "measured_now": [m["name"] for m in figures]})


def document(measurements: list[dict], traces: list[dict], sizes: list[int], anchor: dict, run: dict) -> dict:
    rows = with_ratios(measurements)
    scale = scaling(rows)
    return {
        "schema": SCHEMA_ID,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **run,
        "machine": machine(),
        "git": git_state(),
        "traces": traces,
        "measurements": rows,
        "scaling": scale,
        "servegen_anchor": anchor,
        "targets": targets(rows, scale, sizes, anchor),
    }
