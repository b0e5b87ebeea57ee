"""The clock a trace's timestamps were written with, and times read on it.

BurstGPT writes whole seconds: at 100 req/s most gaps are ties and the inter-arrival CV is about
sqrt(rate) (12.3 on a 200 k-row bench trace) whatever the process. A model fits the process under
the clock (the bundle fit's CVs, bundle/arrivals.py `clock_cv`), generation makes continuous times, and
whatever compares a workload with such a source reads the workload on the source's clock first
(`on_clock`), so both sides carry the same rounding. The grids and the share are those of the
characterization's timestamp grid (sql/marts/timestamp_grid.sql, `StageSettings`)."""

from __future__ import annotations

import numpy as np

GRIDS_S = (60.0, 30.0, 10.0, 5.0, 3.0, 2.0, 1.0, 0.1, 0.01, 0.001)  # coarsest first
SAMPLE = 1_000_000  # arrivals judged, at most (evenly spread)


def clock_of(arrival_s: np.ndarray, grid_share: float = 0.9, coarse_from_s: float = 0.01) -> float | None:
    """The coarsest grid at least `grid_share` of the arrivals sit on, when it is `coarse_from_s`
    or coarser (a finer clock biases no statistic); None otherwise."""
    t = np.asarray(arrival_s, dtype=float)
    if t.size < 2:
        return None
    if t.size > SAMPLE:
        t = t[np.linspace(0, t.size - 1, SAMPLE).round().astype(np.int64)]
    tol = np.spacing(np.abs(t))  # the tolerance of every grid: 1e-9 + 8 ulps of each time
    np.multiply(tol, 8, out=tol)
    np.add(tol, 1e-9, out=tol)
    off, on = np.empty_like(t), np.empty(t.shape, dtype=bool)
    for g in GRIDS_S:
        if g < coarse_from_s:
            break
        # to the nearest grid point, within float precision: |t - rint(t / g) g|, the same operations in place
        np.subtract(t, np.multiply(np.rint(np.divide(t, g, out=off), out=off), g, out=off), out=off)
        if np.mean(np.less_equal(np.abs(off, out=off), tol, out=on)) >= grid_share:
            return g
    return None


def on_clock(arrival_s: np.ndarray, clock_s: float | None, in_place: bool = False) -> np.ndarray:
    """Times as a clock of `clock_s` seconds writes them (floored); unchanged without one.
    `in_place`: written over `arrival_s` (a float64 array the caller owns), the same numbers."""
    if not clock_s:
        return arrival_s
    if in_place and isinstance(arrival_s, np.ndarray) and arrival_s.dtype == np.float64:
        return np.multiply(np.floor(np.divide(arrival_s, clock_s, out=arrival_s), out=arrival_s), clock_s, out=arrival_s)
    return np.floor(np.asarray(arrival_s, dtype=float) / clock_s) * clock_s



def clock_of_batches(batches, settings) -> float | None:
    """The clock a source's batches of rows (rows/read.py) were written with, from its first arrivals."""
    from servetrace.arrays import numpy_of
    from servetrace.rows import read

    head, n = [], 0
    for b in batches(["arrival_s"]):  # through the buffers: polars' Arrow import loads pyarrow.compute
        head.append(numpy_of(read.column(b, "arrival_s"), null=np.nan))
        n += b.num_rows
        if n >= SAMPLE:
            break
    return clock_of_head(np.concatenate(head) if head else np.empty(0), settings)


def clock_of_head(arrival_s: np.ndarray, settings) -> float | None:
    """A source's coarse clock judged on its first SAMPLE arrivals, as every fit judges it."""
    return clock_of(arrival_s[:SAMPLE], settings.stages.grid_share, settings.stages.deround_from_s)
