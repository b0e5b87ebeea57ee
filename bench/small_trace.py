"""The small-trace figure: `servetrace characterize` of a small real trace (Azure 2023
conversation, ~19 k rows, from ../shared/data; else the default sample) against a bare
`python -c "import duckdb, polars; <one query over the file>"`, side by side. Most real traces
people characterize are this small, so the fixed cost (start-up, imports, the report) is the
speed they feel.

    python -m bench.small_trace TRACE.csv      # the bare baseline: one process, one query
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from bench.commands import SERVETRACE, json_tail
from bench.measure import Measurement, measure, skipped

REPO = Path(__file__).resolve().parents[1]
SMALL_TRACES = (REPO.parent / "shared" / "data" / "azure2023" / "AzureLLMInferenceTrace_conv.csv",
                REPO / "data" / "samples" / "burstgpt_sample.csv")
BARE = "bare import duckdb, polars + one query"
CHARACTERIZE = "servetrace characterize (small trace)"


def small_trace() -> Path | None:
    return next((p for p in SMALL_TRACES if p.exists()), None)


def measure_small(work: Path, repeat: int, trace: Path | None = None) -> list[Measurement]:
    """Both figures on the small trace (`trace`, else the first of SMALL_TRACES there), each `repeat`
    times, interleaved run by run."""
    trace = trace or small_trace()
    if trace is None:
        return [skipped(CHARACTERIZE, "no small real trace (../shared/data absent) and no default sample")]
    n = sum(1 for _ in trace.open("rb")) - 1
    kw = {"trace": trace.stem, "rows": n}
    out = work / "small"

    def fresh(i: int) -> None:
        shutil.rmtree(out, ignore_errors=True)

    bare, char = None, None
    for _ in range(repeat):  # side by side: one of each per round, so the load hits both alike
        b = measure(BARE, lambda i: [sys.executable, "-m", "bench.small_trace", str(trace)], 1, **kw)
        c = measure(CHARACTERIZE, lambda i: [*SERVETRACE, "characterize", str(trace), "--out", str(out), "--quiet",
                                             "--json"], 1, before=fresh, **kw)
        bare, char = _merge(bare, b), _merge(char, c)
    if char.status == "ok":
        char.extra["timings_s"] = json_tail(char.stdout).get("timings_s")
    for m in (bare, char):
        m.extra.update({"small": True, "load_1m": round(os.getloadavg()[0], 2)})
    shutil.rmtree(out, ignore_errors=True)
    return [bare, char]


def _merge(a: Measurement | None, b: Measurement) -> Measurement:
    if a is None or b.status != "ok":
        return b if a is None or a.status == "ok" else a
    a.wall_s += b.wall_s
    a.cpu_s += b.cpu_s
    a.peak_rss += b.peak_rss
    a.stdout = b.stdout
    return a


def bare_query(path: str) -> None:
    """What a user's one-liner would do: import both, one aggregate query over the file."""
    import duckdb
    import polars  # noqa: F401 - the import is part of the baseline

    # the first column only: the others differ in type between traces (BurstGPT's second is the model name)
    print(duckdb.sql(f"select count(*) as rows, min(#1), max(#1) from read_csv('{path}')").pl())


if __name__ == "__main__":
    bare_query(sys.argv[1])
