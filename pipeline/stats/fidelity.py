"""Fidelity metrics: pure functions over arrays of one trace or of two traces side by side.

Distances and rank correlations are scipy's (two-sample KS, first Wasserstein, Spearman); the
window grid, rates and dispersion are numpy over whole bins of a stated span.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def window_grid(source_arrival_s: np.ndarray, synthetic_arrival_s: np.ndarray, window_s: float,
                min_cover: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Window starts (multiples of `window_s`) over the span both traces cover, and the seconds of
    that common span inside each window; windows covered less than `min_cover` are dropped."""
    lo = max(float(source_arrival_s.min()), float(synthetic_arrival_s.min()))
    hi = min(float(source_arrival_s.max()), float(synthetic_arrival_s.max()))
    if hi <= lo:
        return np.empty(0), np.empty(0)
    starts = np.arange(np.floor(lo / window_s), np.floor(hi / window_s) + 1) * window_s
    cover = np.minimum(starts + window_s, hi) - np.maximum(starts, lo)
    keep = cover >= min_cover * window_s
    return starts[keep], cover[keep]


def window_rates(arrival_s: np.ndarray, starts: np.ndarray, cover: np.ndarray, window_s: float) -> np.ndarray:
    """Requests per second in each window of the grid (count / covered seconds)."""
    if len(starts) == 0:
        return np.empty(0)
    first = int(round(starts[0] / window_s))
    idx = np.floor(arrival_s / window_s).astype(np.int64) - first
    n = int(round(starts[-1] / window_s)) - first + 1
    inside = (idx >= 0) & (idx < n)
    counts = np.bincount(idx[inside], minlength=n)
    pos = np.rint(starts / window_s).astype(np.int64) - first
    return counts[pos] / cover


def rate_ape(source_rps: np.ndarray, synthetic_rps: np.ndarray) -> np.ndarray:
    """Absolute percentage error per window, as a fraction; NaN where the source is idle."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(source_rps > 0, np.abs(synthetic_rps - source_rps) / source_rps, np.nan)


def iat_cv(arrival_s: np.ndarray) -> float | None:
    """Coefficient of variation (population std / mean) of the gaps between sorted arrivals."""
    if len(arrival_s) < 3:
        return None
    return iat_cv_of_gaps(np.diff(np.sort(arrival_s)))


def iat_cv_of_gaps(gaps: np.ndarray) -> float | None:
    """`iat_cv` of the gaps between sorted arrivals, in their order."""
    mean = gaps.mean()
    return float(gaps.std() / mean) if mean > 0 else None


def idc(arrival_s: np.ndarray, scale_s: float, span: tuple[float, float] | None = None) -> float | None:
    """Index of dispersion of counts (population variance / mean of counts per `scale_s` bin), over
    the whole bins of `span` = (lo, hi) from lo (default: the trace's first to last arrival); a
    partial last bin is left out (its short count would inflate the variance)."""
    if len(arrival_s) < 2:
        return None
    lo, hi = span if span else (float(arrival_s.min()), float(arrival_s.max()))
    n_bins = int(np.floor((hi - lo) / scale_s))
    if n_bins < 2:
        return None
    idx = np.floor((arrival_s - lo) / scale_s).astype(np.int64)
    idx = idx[(idx >= 0) & (idx < n_bins)]
    if n_bins <= 4 * len(idx) + 4096:  # counted in place: a bin per slot (empty ones add zeros)
        counts = np.bincount(idx, minlength=n_bins)
    else:  # the occupied bins only: memory follows the rows, not the span
        _, counts = np.unique(idx, return_counts=True)
    return _idc_of_counts(counts, n_bins)


def _idc_of_counts(counts: np.ndarray, n_bins: int) -> float | None:
    # integer counts: the sums below are exact (below 2**53), whichever way they were counted
    mean = counts.sum() / n_bins
    return float((np.square(counts, dtype=np.float64).sum() / n_bins - mean * mean) / mean) if mean > 0 else None


def idc_sorted(arrival_s: np.ndarray, scales_s, scratch=None) -> dict[float, float | None]:
    """`idc` at each of `scales_s` of sorted arrivals (no NaN), over their first to last arrival:
    the same bins and counts, so the same figures bit for bit. Sorted, each scale's bin indices
    ascend: the bins past the last whole one are a tail cut off, not a mask; the offsets from the
    first arrival are made once for every scale, in `scratch`'s work arrays (arrays.Scratch) when given."""
    from servetrace.arrays import Scratch

    n = len(arrival_s)
    if n < 2:
        return {s: None for s in scales_s}
    work = scratch if scratch is not None else Scratch()
    lo, hi = float(arrival_s[0]), float(arrival_s[-1])
    d = np.subtract(arrival_s, lo, out=work("idc_offsets", n))
    q = work("idc_bins", n)
    out = {}
    for s in scales_s:
        n_bins = int(np.floor((hi - lo) / s))
        if n_bins < 2:
            out[s] = None
            continue
        np.floor(np.divide(d, s, out=q), out=q)  # each arrival's bin, as `idc` finds it (whole numbers, exact)
        inside = q[:int(np.searchsorted(q, n_bins))]  # ascending and >= 0: the whole bins are a head
        if 8 * n_bins <= len(inside):  # few bins: each one's first arrival found by bisection
            counts = np.diff(np.searchsorted(inside, np.arange(n_bins + 1, dtype=np.float64)))
        elif n_bins <= 4 * len(inside) + 4096:
            idx = work("idc_index", len(inside), np.int64)
            np.copyto(idx, inside, casting="unsafe")
            counts = np.bincount(idx, minlength=n_bins)
        else:  # the occupied bins only, each a run of one index
            edges = np.flatnonzero(inside[1:] != inside[:-1]) + 1
            counts = np.diff(np.r_[0, edges, len(inside)]) if len(inside) else np.zeros(0, np.int64)
        out[s] = _idc_of_counts(counts, n_bins)
    if scratch is None:
        work.clear()
    return out


def ks_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sample Kolmogorov-Smirnov statistic sup |F_a - F_b|, exact with ties: both empirical CDFs
    at every observed value (scipy.stats.ks_2samp's statistic, equal in tests; scipy.stats costs
    about a second of start-up and the bundle fit scores every arrival model with this)."""
    if len(a) == 0 or len(b) == 0:
        return None
    return ks_sorted(np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float)))


def ks_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """`ks_distance` of two sorted, non-empty arrays: both CDFs at each distinct observed value
    (the supremum is at one of them; gaps on a coarse clock have few)."""
    if np.isnan(a[-1]) or np.isnan(b[-1]):  # NaN sorts last and each is its own run: the plain form
        at = np.concatenate([_distinct(a), _distinct(b)])
        return float(np.abs(np.searchsorted(a, at, "right") / a.size - np.searchsorted(b, at, "right") / b.size).max())
    # each side's own CDF at its distinct values is where their runs end (what searchsorted would
    # find again): only the other side is searched, the same counts and the same largest distance
    ends_a, ends_b = _run_ends(a), _run_ends(b)
    at_a, at_b = a[ends_a], b[ends_b]
    on_a = np.abs((ends_a + 1) / a.size - np.searchsorted(b, at_a, "right") / b.size).max()
    on_b = np.abs(np.searchsorted(a, at_b, "right") / a.size - (ends_b + 1) / b.size).max()
    return float(max(on_a, on_b))


def _run_ends(x: np.ndarray) -> np.ndarray:
    """Positions of the last element of each run of equal values of a sorted array."""
    keep = np.empty(len(x), bool)
    keep[:-1] = x[1:] != x[:-1]
    keep[-1:] = True
    return np.flatnonzero(keep)


def _distinct(x: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array (its last of each run)."""
    keep = np.empty(len(x), bool)
    keep[:-1] = x[1:] != x[:-1]
    keep[-1:] = True
    return x[keep]


def wasserstein(a: np.ndarray, b: np.ndarray) -> float | None:
    """First Wasserstein distance: the area between the two empirical CDFs (scipy)."""
    from scipy import stats

    if len(a) == 0 or len(b) == 0:
        return None
    return float(stats.wasserstein_distance(a, b))


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman rank correlation, as scipy.stats.spearmanr: the Pearson correlation of average
    ranks (Polars ranks: importing scipy.stats costs about a second); None when undefined."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rx, ry = (pl.Series(v).rank("average").to_numpy() for v in (x, y))
    return float(np.corrcoef(rx, ry)[0, 1])


def top_shares(client_counts: np.ndarray, ks: tuple[int, ...]) -> dict[int, float] | None:
    """Share of the requests that carry a client id made by the k busiest clients."""
    total = client_counts.sum()
    if len(client_counts) == 0 or total == 0:
        return None
    desc = np.sort(client_counts)[::-1]
    return {k: float(desc[:k].sum() / total) for k in ks}


def relative_error(source: float | None, synthetic: float | None) -> float | None:
    if source is None or synthetic is None or source == 0:
        return None
    return abs(synthetic - source) / abs(source)
