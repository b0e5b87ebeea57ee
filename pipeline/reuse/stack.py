"""LRU stack (reuse) distances of a block reference stream, exact and sampled (SHARDS).

The stack distance of a reference is the number of distinct other blocks referenced since the
previous reference to the same block (-1 for a first reference): an LRU cache of C blocks hits
exactly the references whose distance is < C (Mattson et al., 1970).

Exact: with p = previous reference of the block at i, distinct blocks in (p, i) = (i - p - 1)
minus the references j in (p, i) whose own previous reference is after p, i.e. the earlier
j < i with prev[j] > prev[i] ("earlier and greater" counts, an inversion count per element).
Those counts come from a bit-by-bit stable partition of prev (a wavelet-tree pass, one numpy
pass per bit of log2(n)): O(n log n) work with no Python loop over references.

Sampled: SHARDS (Waldspurger et al., FAST '15) keeps the references whose block hashes below a
threshold (a spatial sample at rate R), computes their exact distances and scales them by 1/R;
`shards_adjust` moves the difference between expected and sampled reference counts into the
first bucket (SHARDS_adj).
"""

from __future__ import annotations

import numpy as np

COLD = -1  # stack distance of a first reference (a miss at every capacity)


def previous_reference(blocks: np.ndarray) -> np.ndarray:
    """Index of the previous reference to the same block, -1 for the first one."""
    n = len(blocks)
    order = np.argsort(blocks, kind="stable")
    sorted_blocks = blocks[order]
    prev = np.full(n, -1, dtype=np.int64)
    same = np.flatnonzero(sorted_blocks[1:] == sorted_blocks[:-1]) + 1 if n > 1 else np.zeros(0, np.int64)
    prev[order[same]] = order[same - 1]
    return prev


def earlier_greater(x: np.ndarray) -> np.ndarray:
    """For each i, #{j < i : x[j] > x[i]} (x non-negative integers), one stable partition per bit."""
    n = len(x)
    out = np.zeros(n, dtype=np.int64)
    if n < 2:
        return out
    bits = int(x.max()).bit_length()
    cur = x.astype(np.int64)  # values in the current order (grouped by their higher bits)
    idx = np.arange(n, dtype=np.int64)  # original positions, stable within each group
    pos = np.arange(n, dtype=np.int64)
    for b in range(bits - 1, -1, -1):
        group = cur >> (b + 1)
        bit = (cur >> b) & 1
        start = np.ones(n, dtype=bool)
        start[1:] = group[1:] != group[:-1]
        starts = np.flatnonzero(start)
        gid = np.cumsum(start) - 1
        ones = np.cumsum(bit)
        ones_before = ones - bit  # ones strictly before, from the array start
        base = ones_before[starts]  # ones before each group's start
        ones_in_group_before = ones_before - base[gid]
        zero = bit == 0
        out[idx[zero]] += ones_in_group_before[zero]  # earlier, same higher bits, this bit 1: greater
        # stable partition within each group: zeros first, then ones
        group_ones = np.add.reduceat(bit, starts)
        group_len = np.diff(np.append(starts, n))
        zeros_before = (pos - starts[gid]) - ones_in_group_before
        new_pos = np.where(zero, starts[gid] + zeros_before,
                           starts[gid] + (group_len - group_ones)[gid] + ones_in_group_before)
        nxt_cur = np.empty_like(cur)
        nxt_idx = np.empty_like(idx)
        nxt_cur[new_pos] = cur
        nxt_idx[new_pos] = idx
        cur, idx = nxt_cur, nxt_idx
    return out


def stack_distances(blocks: np.ndarray) -> np.ndarray:
    """Exact LRU stack distance of every reference (COLD for first references)."""
    blocks = np.asarray(blocks)
    n = len(blocks)
    prev = previous_reference(blocks)
    inv = earlier_greater(prev + 1)
    i = np.arange(n, dtype=np.int64)
    return np.where(prev < 0, COLD, i - prev - 1 - inv)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: a uniform 64-bit hash of integer block ids."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def shards_sample(blocks: np.ndarray, rate: float, salt: int = 0) -> np.ndarray:
    """Boolean mask of the references SHARDS keeps: hash(block) mod 2^24 < rate x 2^24."""
    threshold = np.uint64(max(1, int(round(rate * (1 << 24)))))
    h = _mix(np.asarray(blocks).astype(np.int64) ^ np.int64(salt)) >> np.uint64(40)
    return h < threshold
