"""Pearson, Spearman and Kendall (tau-b) over all rows, from the counts of distinct (x, y) pairs.

Token counts are integers with few distinct values: 10 M requests hold well under a million distinct
(input, output) pairs. Every statistic here is exact over the rows, computed on the weighted pairs:
mid-ranks from the marginal counts (Spearman), and the discordant pairs of tau-b as a weighted
inversion count, vectorized over the levels of a merge sort (no loop over rows or pairs).
"""

from __future__ import annotations

import numpy as np


def weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    n = w.sum()
    dx = x - (w * x).sum() / n
    dy = y - (w * y).sum() / n
    return float((w * dx * dy).sum() / np.sqrt((w * dx * dx).sum() * (w * dy * dy).sum()))


def mid_ranks(v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: the average 1-based rank of its value among all rows, and its value's dense rank."""
    levels, inverse = np.unique(v, return_inverse=True)
    counts = np.bincount(inverse, weights=w, minlength=len(levels))
    before = np.cumsum(counts) - counts
    return (before + (counts + 1) / 2)[inverse], inverse


def weighted_inversions(r: np.ndarray, w: np.ndarray) -> int:
    """Sum of w_i * w_j over i < j with r_i > r_j (r: dense ranks, sequence order as given).

    Bottom-up merge sort: at each level, every block's left half is already sorted, so the left
    elements above each right element are found by one searchsorted; a stable sort of the level's
    two sorted runs per block (timsort merges runs) gives the next level."""
    m = len(r)
    k = int(r.max()) + 1 if m else 1
    pos = np.arange(m)
    r = r.astype(np.int64)
    w = w.astype(np.int64)
    total = 0
    size = 1
    while size < m:  # log2(m) levels
        keys = (pos // (2 * size)) * k + r
        right = (pos // size) % 2 == 1
        left_keys = keys[~right]  # sorted: blocks in order, each left half sorted
        cum = np.concatenate([[0], np.cumsum(w[~right])])
        block_end = (keys[right] // k) * k + (k - 1)
        above = cum[np.searchsorted(left_keys, block_end, side="right")] - cum[np.searchsorted(left_keys, keys[right], side="right")]
        total += int((w[right] * above).sum())
        order = np.argsort(keys, kind="stable")
        r, w = r[order], w[order]
        size *= 2
    return total


def kendall_tau_b(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """tau-b over the rows the weighted distinct pairs stand for (as scipy.stats.kendalltau)."""
    order = np.lexsort((y, x))
    x, y, w = x[order], y[order], w[order].astype(np.int64)
    n = int(w.sum())
    _, xi = np.unique(x, return_inverse=True)
    _, yi = np.unique(y, return_inverse=True)
    cx, cy = np.bincount(xi, weights=w).astype(np.int64), np.bincount(yi, weights=w).astype(np.int64)
    tot = n * (n - 1) // 2
    xtie = int((cx * (cx - 1) // 2).sum())
    ytie = int((cy * (cy - 1) // 2).sum())
    ntie = int((w * (w - 1) // 2).sum())  # pairs are distinct: a pair's rows tie on both
    dis = weighted_inversions(yi, w)
    con_minus_dis = tot - xtie - ytie + ntie - 2 * dis
    return float(con_minus_dis / np.sqrt(float(tot - xtie)) / np.sqrt(float(tot - ytie)))


def correlations(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict | None:
    """Pearson, Spearman, Kendall tau-b and rows; None when undefined (under 3 rows, a constant side)."""
    x, y, w = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), np.asarray(w, dtype=np.int64)
    n = int(w.sum())
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rx, _ = mid_ranks(x, w)
    ry, _ = mid_ranks(y, w)
    return {
        "pearson": weighted_pearson(x, y, w.astype(np.float64)),
        "spearman": weighted_pearson(rx, ry, w.astype(np.float64)),
        "kendall": kendall_tau_b(x, y, w),
        "rows": n,
    }
