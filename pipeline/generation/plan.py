"""How a generation is cut so that memory stays bounded whatever the output size.

The timeline's segments are split where one would hold more than BLOCK_ROWS / 2 expected
requests, then grouped, in time order, into blocks of about BLOCK_ROWS requests (counting the
gap pools the arrival process draws ahead, so many sparse clients weigh too). Each block is
generated, sorted and handed to the writer before the next one: only one block is in memory.

The cut depends on the bundle and the options only (all the bundle's clients, whichever are
selected, so a client's stream stays its own): the same seed gives the same bytes however the
writer batches its row groups. A request whose expected size cannot fit is refused up front."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from servetrace.errors import ServetraceError
from servetrace.generation.arrivals import WindowParams, unit_cv
from servetrace.generation.options import Timeline

BLOCK_ROWS = 1 << 19  # expected requests (plus pool slack) per block: ~200 MB of working arrays at most
MAX_SEGMENTS = 4_000_000  # timeline segments held at once (~200 MB)
MAX_REQUESTS = 10**11  # beyond this, no output is reasonable on one machine
BYTES_PER_REQUEST = {"parquet": 12, "csv": 40}  # measured lower bounds (zstd Parquet: 12-20 B)


@dataclass(frozen=True)
class Plan:
    timeline: Timeline
    block: np.ndarray  # block of each segment, ascending
    expected: np.ndarray  # expected requests of the selected clients in each segment

    @property
    def bounds(self) -> list[tuple[int, int, int]]:
        """(first segment, end segment, block id) of each non-empty block."""
        cut = np.flatnonzero(np.r_[True, np.diff(self.block) > 0, True])
        return [(int(a), int(b), int(self.block[a])) for a, b in zip(cut[:-1], cut[1:])]

    @property
    def expected_requests(self) -> float:
        return float(self.expected.sum())


def check_segments(duration_s: float, window_s: float) -> None:
    """Refuse a span that would need more timeline segments than memory allows, before building them."""
    n = duration_s / max(window_s, 1e-9)
    if not np.isfinite(n) or n > MAX_SEGMENTS:
        raise ServetraceError(f"--duration {duration_s:g} s spans {n:.3g} windows of {window_s:g} s; "
                              f"at most {MAX_SEGMENTS:,} per run (generate the span in parts with --start)")


def split(tl: Timeline, cost: np.ndarray, limit: float) -> tuple[Timeline, np.ndarray]:
    """Cut each segment into equal parts of at most `limit` cost; returns the timeline and part costs."""
    parts = np.maximum(1, np.ceil(cost / limit)).astype(np.int64)
    if (parts == 1).all():
        return tl, cost
    seg = np.repeat(np.arange(len(parts)), parts)
    k = np.arange(len(seg)) - np.repeat(np.cumsum(parts) - parts, parts)
    width = (tl.end_s - tl.begin_s) / parts
    begin = tl.begin_s[seg] + k * width[seg]
    end = np.where(k == parts[seg] - 1, tl.end_s[seg], begin + width[seg])
    return Timeline(begin, end, tl.window[seg], tl.factor[seg]), (cost / parts)[seg]


def plan(tl: Timeline, every: WindowParams, chosen_rate: np.ndarray, block_rows: int = BLOCK_ROWS) -> Plan:
    """`every`: window parameters of all the bundle's clients (the cut's basis); `chosen_rate`:
    (selected clients x windows) rates, for the expected counts."""
    length = tl.end_s - tl.begin_s
    check_size(float((chosen_rate.sum(axis=0)[tl.window] * tl.factor * length).sum()), "parquet", None)
    active = every.rate > 0
    cv = np.where(active, unit_cv(every.family, every.shape), 0.0)
    # pool_sizes summed over clients: sum r f L + 6 sqrt(f L) sum cv sqrt(r) + sum (6 cv^2 + 8)
    lin = every.rate.sum(axis=0)[tl.window] * tl.factor * length
    root = (cv * np.sqrt(every.rate)).sum(axis=0)[tl.window] * np.sqrt(np.maximum(tl.factor * length, 0))
    const = np.where(tl.factor > 0, (active * (6 * cv**2 + 8)).sum(axis=0)[tl.window], 0.0)
    cost = lin + 6 * root + const
    tl, cost = split(tl, cost, block_rows / 2)
    block = np.floor((np.cumsum(cost) - cost) / block_rows).astype(np.int64)
    expected = chosen_rate.sum(axis=0)[tl.window] * tl.factor * (tl.end_s - tl.begin_s)
    return Plan(tl, block, expected)


def check_size(expected: float, fmt: str, out: Path | None) -> None:
    """Refuse up front a request whose expected output is too large for any run or for the disk."""
    if not np.isfinite(expected) or expected > MAX_REQUESTS:
        raise ServetraceError(f"the options ask for about {expected:.3g} requests; at most {MAX_REQUESTS:.0e} "
                              "per run (lower --duration, --rate-scale or --rate)")
    if out is None:
        return
    need = expected * BYTES_PER_REQUEST.get(fmt, BYTES_PER_REQUEST["csv"])
    where = out.parent if out.parent.exists() else Path(".")
    free = shutil.disk_usage(where).free
    if need > free:
        raise ServetraceError(f"the options ask for about {expected:.3g} requests, at least {need / 2**30:.3g} GiB "
                              f"as {fmt}; {free / 2**30:.3g} GiB free in {where}")
