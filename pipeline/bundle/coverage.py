"""Seconds of each bundle window the source covered, and the request counts they imply.

A fitted bundle's `covered` span (the source's first to last arrival) usually starts and ends
inside a window; that window's rate is per covered second (bundle/arrivals.covered_seconds), so
its requests are rate x covered seconds, not rate x window. Every consumer that turns rates back
into counts (the knob card, the ServeGen export, generation) goes through here, so the expected
count over the source's span is the source's. A bundle without `covered` (an import) covers its
whole grid."""

from __future__ import annotations

import numpy as np

from servetrace.bundle.arrivals import MIN_COVER_S


def window_lengths(bundle: dict) -> np.ndarray:
    """Length of each aggregate window: until the next start, the last one `window_s`."""
    grid = np.asarray(bundle["aggregate"]["window_start_s"], dtype=float)
    return np.r_[np.diff(grid), float(bundle["window_s"])] if grid.size else np.zeros(0)


def covered_seconds_at(bundle: dict, starts) -> np.ndarray:
    """Covered seconds of the windows starting at `starts` (values of the aggregate grid), as the
    fit divided by: the window's overlap with `covered`, at least MIN_COVER_S (or the window)."""
    grid = np.asarray(bundle["aggregate"]["window_start_s"], dtype=float)
    starts = np.asarray(starts, dtype=float)
    length = window_lengths(bundle)[np.clip(np.searchsorted(grid, starts), 0, max(grid.size - 1, 0))]
    cov = bundle.get("covered")
    if not cov:
        return length
    lo = np.maximum(starts, float(cov["start_s"]))
    hi = np.minimum(starts + length, float(cov["end_s"]))
    return np.maximum(hi - lo, np.minimum(MIN_COVER_S, length))


def covered_seconds(bundle: dict) -> np.ndarray:
    """Covered seconds of every aggregate window."""
    return covered_seconds_at(bundle, bundle["aggregate"]["window_start_s"])


def expected_requests(bundle: dict) -> float:
    """Requests the bundle's aggregate rates imply over the covered span (the source's count for a
    fitted bundle, up to windows touched for less than MIN_COVER_S)."""
    rate = np.asarray(bundle["aggregate"]["rate_rps"], dtype=float)
    return float((rate * covered_seconds(bundle)).sum())


def covered_span(bundle: dict) -> dict:
    """The span the counts refer to: `start_s`, `end_s`, `seconds` (covered, else the grid)."""
    cov = bundle.get("covered")
    grid = bundle["aggregate"]["window_start_s"]
    if cov:
        start, end = float(cov["start_s"]), float(cov["end_s"])
    else:
        start = float(grid[0]) if grid else 0.0
        end = start + float(bundle["span_s"])
    return {"start_s": start, "end_s": end, "seconds": float(covered_seconds(bundle).sum())}
