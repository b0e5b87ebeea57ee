"""stg_requests' seeded uniforms (`u`, `u_jitter`) in numpy, for the row stream: the same bits as
the portable SQL hash both engines run (sql/staging/stg_requests.sql), from the row numbers the
stream carries. In SQL the hash is some twenty bigint steps with overflow checks a row (about
0.45 s a uniform over 10 M rows on DuckDB); here it is eight 32-bit vector steps, whose products
wrap mod 2^32 as the SQL's 16-bit halves compute them. tests/test_uniforms.py holds this, DuckDB's
and Spark's uniforms equal to an independent reference bit for bit."""

from __future__ import annotations

import numpy as np

from servetrace.arrays import Scratch

GOLDEN = np.uint32(0x61C88647)


def key_of(seed: int) -> np.uint32:
    """The seed's key: seed x 0x61C88647 + 0x85EBCA6B mod 2^32 (the jitter's from seed + 1)."""
    return np.uint32((seed % 2**32 * 0x61C88647 + 0x85EBCA6B) % 2**32)


def seeded_uniform(rows: np.ndarray, seed: int, out: np.ndarray | None = None,
                   work: Scratch | None = None) -> np.ndarray:
    """Each row number's uniform on [0, 1) under `seed` (as float64, in `out` when given; `work`:
    work arrays for the 32-bit steps). Row numbers are non-negative int64."""
    work = work or Scratch()
    n = len(rows)
    h = work("uniform.h", n, np.uint32)
    tmp = work("uniform.tmp", n, np.uint32)
    h[...] = rows  # the low 32 bits (a wrapping cast)
    np.bitwise_xor(h, key_of(seed), out=h)
    if n and int(rows.max()) >> 32:  # + (row >> 32) x 0x61C88647, mod 2^32
        high = np.right_shift(rows, 32, out=work("uniform.high", n, rows.dtype))
        tmp[...] = high
        np.multiply(tmp, GOLDEN, out=tmp)
        np.add(h, tmp, out=h)
    for shift, factor in ((16, np.uint32(0x85EBCA6B)), (13, np.uint32(0xC2B2AE35)), (16, None)):
        np.bitwise_xor(h, np.right_shift(h, shift, out=tmp), out=h)  # MurmurHash3's 32-bit finalizer
        if factor is not None:
            np.multiply(h, factor, out=h)
    return np.multiply(h, 2.0 ** -32, out=out)  # = h / 2^32 exactly


def sampled_rows(rows: int, seed: int, p: float, chunk: int = 1 << 16) -> np.ndarray:
    """The row numbers 0 .. rows - 1 whose uniform under `seed` is below `p` (stg_sample_rows), in
    order: drawn `chunk` rows at a time (work arrays of half a megabyte, reused: this runs beside
    the row stream's peak), so memory stays with the sample (about rows x p)."""
    work, picked = Scratch(), [np.zeros(0, np.int64)]
    for lo in range(0, rows, chunk):  # a loop over chunks of 65,536 rows
        r = np.arange(lo, min(rows, lo + chunk), dtype=np.int64)
        picked.append(r[seeded_uniform(r, seed, work("u", len(r)), work) < p])
    return np.concatenate(picked)
