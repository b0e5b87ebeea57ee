"""The per-trace figures: DuckDB proxy, `servetrace ingest`, `servetrace characterize` (fresh and
with the ingest reused), and the pandas baseline, each as a whole process."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from bench.commands import SERVETRACE, available, json_tail
from bench.measure import Measurement, measure, skipped

PARTS = ("proxy", "ingest", "characterize", "stages", "pandas")
OUTPUTS = ("requests.parquet", "findings.json", "tables", "bundle.json", "report.html")


def _fresh(path: Path):
    def reset(i: int) -> None:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return reset


def _proxy(trace: Path, work: Path, repeat: int, parts, kw: dict) -> list[Measurement]:
    out = work / "proxy.parquet"
    m = measure("duckdb proxy", lambda i: [sys.executable, "-m", "bench.proxy", str(trace), str(out)],
                repeat, before=_fresh(out), **kw)
    out.unlink(missing_ok=True)
    return [m]


def _ingest(trace: Path, work: Path, repeat: int, parts, kw: dict) -> list[Measurement]:
    if not available("ingest"):
        return [skipped("servetrace ingest", "`servetrace ingest` is not available yet", **kw)]
    out = work / "ingest"
    m = measure("servetrace ingest", lambda i: [*SERVETRACE, "ingest", str(trace), "--out", str(out)],
                repeat, before=_fresh(out), **kw)
    shutil.rmtree(out, ignore_errors=True)
    return [m]


def _characterize(trace: Path, work: Path, repeat: int, parts, kw: dict) -> list[Measurement]:
    """Fresh (ingest included), then, with "stages" in parts, the same command again on the same
    directory: the ingested table is reused (source sha256 checked) and every stage runs."""
    names = ["servetrace characterize"] + (["characterize, ingest reused"] if "stages" in parts else [])
    if not available("characterize"):
        return [skipped(n, "`servetrace characterize` is not available yet", **kw) for n in names]
    out = work / "characterize"
    cmd = [*SERVETRACE, "characterize", str(trace), "--out", str(out), "--quiet", "--json"]
    fresh = measure(names[0], lambda i: cmd, repeat, before=_fresh(out), **kw)
    fresh.extra["outputs"] = sorted(o for o in OUTPUTS if (out / o).exists())
    fresh.extra["timings_s"] = json_tail(fresh.stdout).get("timings_s")
    found = [fresh]
    if len(names) > 1 and fresh.status != "ok":
        found.append(skipped(names[1], "characterize failed", **kw))
    elif len(names) > 1:
        stages = measure(names[1], lambda i: cmd, repeat, **kw)
        summary = json_tail(stages.stdout)
        reused = summary.get("cached")
        # The command's own clock for its parts (last run): the stages alone, without start-up,
        # the bundle fit and the report, are what the stage target is about.
        stages.extra["timings_s"] = summary.get("timings_s")
        stages.extra["note"] = ("ingest reused (source sha256 checked), every stage run" if reused is not False
                                else "ingest was NOT reused: this is a full run")
        found.append(stages)
    shutil.rmtree(out, ignore_errors=True)
    return found


def _pandas(trace: Path, work: Path, repeat: int, parts, kw: dict) -> list[Measurement]:
    m = measure("pandas baseline", lambda i: [sys.executable, "-m", "bench.pandas_baseline", str(trace)], repeat, **kw)
    if m.status == "ok":
        m.extra["statistics"] = json_tail(m.stdout)
    return [m]


STEPS = (("proxy", _proxy), ("ingest", _ingest), ("characterize", _characterize), ("pandas", _pandas))


def measure_trace(trace: Path, rows: int, schema: str, work: Path, repeat: int,
                  parts: tuple[str, ...] = PARTS) -> list[Measurement]:
    """The figures named in `parts` (see PARTS) on one trace, each run `repeat` times."""
    work.mkdir(parents=True, exist_ok=True)
    kw = {"trace": trace.stem, "rows": rows}
    found = []
    for part, step in STEPS:
        if part in parts:
            for m in step(trace, work, repeat, parts, kw):
                m.extra.update({"schema": schema, "load_1m": round(os.getloadavg()[0], 2)})
                found.append(m)
    return found
