"""Pearson, Spearman and Kendall (tau-b) over all rows, from the counts of distinct (x, y) pairs.

Token counts are integers with few distinct values: 10 M requests hold well under a million distinct
(input, output) pairs. Every statistic here is exact over the rows, computed on the weighted pairs:
mid-ranks from the marginal counts (Spearman), and the discordant pairs of tau-b as a weighted
inversion count, vectorized over the bits of the ranks (no loop over rows or pairs).
"""

from __future__ import annotations

import numpy as np


def weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    n = w.sum()
    dx = x - (w * x).sum() / n
    dy = y - (w * y).sum() / n
    return float((w * dx * dy).sum() / np.sqrt((w * dx * dx).sum() * (w * dy * dy).sum()))


def dense_ranks(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct values, sorted; each row's 0-based index among them). Non-negative integers
    up to a few times the row count (token counts) by counting, not sorting: the same ranks."""
    v = np.asarray(v)
    if v.dtype.kind in "iu" and v.size and int(v.min()) >= 0 and int(v.max()) <= 4 * v.size + 65536:
        present = np.bincount(v) > 0
        return np.flatnonzero(present), (np.cumsum(present) - 1)[v]
    return np.unique(v, return_inverse=True)


def mid_ranks(v: np.ndarray, w: np.ndarray, dense: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: the average 1-based rank of its value among all rows, and its value's dense rank.
    `dense`: dense_ranks(v), when already computed."""
    levels, inverse = dense if dense is not None else dense_ranks(v)
    counts = np.bincount(inverse, weights=w, minlength=len(levels))
    before = np.cumsum(counts) - counts
    return (before + (counts + 1) / 2)[inverse], inverse


def weighted_inversions(r: np.ndarray, w: np.ndarray) -> int:
    """Sum of w_i * w_j over i < j with r_i > r_j (r: dense ranks, sequence order as given).

    Bit by bit of the rank, highest first: a pair is inverted where its ranks first differ, the
    earlier row holding the 1 there. For each bit the rows are grouped by the rank's higher bits
    (a stable radix sort keeps sequence order within a group) and each row with a 0 counts the
    weight of the rows with a 1 before it in its group: as many passes as the ranks have bits
    (12 for 2.9 k output lengths, against 20 merge levels for 740 k pairs), integers throughout.
    Per pass, the 0s' weights times the 1s' weight before them over the whole sequence, less, per
    group, the 0s' weight times the 1s' weight before the group (dot products, no per-row copies)."""
    r = np.asarray(r, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if len(r) < 2:
        return 0
    top = int(r.max())
    bits = top.bit_length()
    keys = r.astype(np.uint16) if top < 2**16 else r  # 16-bit keys: numpy's stable sort is a radix sort
    total = 0
    for b in range(bits):
        prefix = keys >> (b + 1)
        if b + 1 < bits:
            order = np.argsort(prefix, kind="stable")
            rb, wb = keys[order], w[order]
            sizes = np.bincount(prefix, minlength=(top >> (b + 1)) + 1)
            starts = (np.cumsum(sizes) - sizes)[sizes > 0]
        else:  # no higher bits: one group, in sequence order
            rb, wb, starts = keys, w, np.zeros(1, dtype=np.int64)
        w1 = np.where(((rb >> b) & 1).astype(bool), wb, 0)  # the 1s' weights
        w0 = wb - w1  # the 0s'
        ones_before = np.cumsum(w1)
        ones_before -= w1
        total += int(w0 @ ones_before) - int(ones_before[starts] @ np.add.reduceat(w0, starts))
    return total


def kendall_tau_b(x: np.ndarray, y: np.ndarray, w: np.ndarray,
                  dense: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None) -> float:
    """tau-b over the rows the weighted distinct pairs stand for (as scipy.stats.kendalltau).
    `dense`: (dense_ranks(x), dense_ranks(y)), when already computed."""
    (xl, xi), (yl, yi) = dense if dense is not None else (dense_ranks(x), dense_ranks(y))
    w = np.asarray(w, dtype=np.int64)
    if len(xl) < 2**16 and len(yl) < 2**16:  # by x, then y: two passes of a stable radix sort
        order = np.argsort(yi.astype(np.uint16), kind="stable")
        order = order[np.argsort(xi.astype(np.uint16)[order], kind="stable")]
    else:
        order = np.lexsort((yi, xi))
    xi, yi, w = xi[order], yi[order], w[order]
    n = int(w.sum())
    cx = np.bincount(xi, weights=w, minlength=len(xl)).astype(np.int64)
    cy = np.bincount(yi, weights=w, minlength=len(yl)).astype(np.int64)
    tot = n * (n - 1) // 2
    xtie = int((cx * (cx - 1) // 2).sum())
    ytie = int((cy * (cy - 1) // 2).sum())
    ntie = int((w * (w - 1) // 2).sum())  # pairs are distinct: a pair's rows tie on both
    dis = weighted_inversions(yi, w)
    con_minus_dis = tot - xtie - ytie + ntie - 2 * dis
    return float(con_minus_dis / np.sqrt(float(tot - xtie)) / np.sqrt(float(tot - ytie)))


def correlations(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict | None:
    """Pearson, Spearman, Kendall tau-b and rows; None when undefined (under 3 rows, a constant side)."""
    dx, dy = dense_ranks(x), dense_ranks(y)  # once, for Spearman and Kendall alike (before the cast: counted)
    x, y, w = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64), np.asarray(w, dtype=np.int64)
    n = int(w.sum())
    if n < 3 or len(dx[0]) < 2 or len(dy[0]) < 2:  # under 3 rows, or a constant side
        return None
    rx, _ = mid_ranks(x, w, dx)
    ry, _ = mid_ranks(y, w, dy)
    return {
        "pearson": weighted_pearson(x, y, w.astype(np.float64)),
        "spearman": weighted_pearson(rx, ry, w.astype(np.float64)),
        "kendall": kendall_tau_b(x, y, w, (dx, dy)),
        "rows": n,
    }
