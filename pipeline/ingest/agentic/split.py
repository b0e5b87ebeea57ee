"""One JSON trace file too big to read whole, split by bytes into pieces of its `requests` array.

A cc-traces file is one object whose `requests` array holds every call, so DuckDB reads it whole
(about 56x its text). Here the file is scanned once in blocks with numpy (no loop per byte or per
call): a quote is real unless an odd run of backslashes precedes it, the bytes between real quotes
are string, and outside strings brackets give the depth. The top-level array whose key is
`requests` opens at depth 1; its elements are split at the commas outside strings at depth 2.
Each piece is written as the object itself with a run of consecutive elements in its `requests`
(the other keys as they are), so each reads like a trace of its own; the reader is told where the
piece's elements start in the array (positions) and how many user turns ended before it (turns).
A file that does not scan as one object with a `requests` array is left to the whole-file read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK = 1 << 20  # bytes scanned (and copied) at a time: the scan holds about 30x that
KEY = re.compile(rb'"requests"\s*:\s*$')


@dataclass(frozen=True)
class Layout:
    """Where the `requests` array of a trace file opens and closes, and each element's bytes."""
    open: int  # offset of its `[`
    close: int  # offset of its `]`
    starts: np.ndarray  # first byte of each element (after `[` or a comma)
    ends: np.ndarray  # one past each element's last byte (a comma or the `]`)


def _scan(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool] | None:
    """(offsets of `[` opening depth 2, of `]` closing it, of commas at depth 2, whether the file
    is one complete value), or None when its first byte is no `{`."""
    opens, closes, commas = [], [], []
    depth, in_string, backslashes, base, first = 0, False, 0, 0, None
    with open(path, "rb") as f:
        while block := f.read(BLOCK):  # a loop over blocks of the file
            b = np.frombuffer(block, dtype=np.uint8)
            n = len(b)
            if first is None:
                text = block.lstrip()
                if not text:
                    continue
                first = text[:1]
                if first != b"{":
                    return None
            idx = np.arange(n, dtype=np.int32)
            slash = b == 92
            last_other = np.maximum.accumulate(np.where(slash, -1, idx))
            quotes = np.flatnonzero(b == 34)
            before = np.where(quotes > 0, last_other[np.maximum(quotes - 1, 0)], -1)
            run = np.where(quotes > 0, quotes - 1 - before, 0) + np.where(before < 0, backslashes, 0)
            real = quotes[run % 2 == 0]
            toggles = np.zeros(n, dtype=np.int8)
            toggles[real] = 1
            inside = (np.cumsum(toggles, dtype=np.int64) + in_string) % 2 == 1  # at a real quote: its string's side
            outside = ~inside & (toggles == 0)
            step = np.zeros(n, dtype=np.int8)
            step[outside & ((b == 91) | (b == 123))] = 1
            step[outside & ((b == 93) | (b == 125))] = -1
            after = depth + np.cumsum(step, dtype=np.int64)
            opens.append(base + np.flatnonzero((b == 91) & outside & (after == 2)))
            closes.append(base + np.flatnonzero((b == 93) & outside & (after == 1)))
            commas.append(base + np.flatnonzero((b == 44) & outside & (after == 2)))
            depth = int(after[-1])
            in_string = bool((in_string + len(real)) % 2)
            tail = n - 1 - int(last_other[-1])
            backslashes = backslashes + tail if tail == n else tail
            base += n
    if first is None:
        return None
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return cat(opens), cat(closes), cat(commas), depth == 0 and not in_string


def layout(path: Path) -> Layout | None:
    """The `requests` array of the trace object in `path`, or None (see the module's note)."""
    scanned = _scan(path)
    if scanned is None:
        return None
    opens, closes, commas, complete = scanned
    if not complete:
        return None
    with open(path, "rb") as f:
        for at in opens:  # a loop over the top-level arrays (a handful of keys)
            f.seek(max(int(at) - 64, 0))
            if KEY.search(f.read(int(at) - max(int(at) - 64, 0))):
                close = int(closes[np.searchsorted(closes, at)])
                inner = commas[(commas > at) & (commas < close)]
                if not len(inner) and close - at <= 64:
                    f.seek(int(at) + 1)
                    if not f.read(close - int(at) - 1).strip():  # `[]`: no entry
                        return Layout(int(at), close, np.zeros(0, np.int64), np.zeros(0, np.int64))
                starts = np.r_[at + 1, inner + 1].astype(np.int64)
                ends = np.r_[inner, close].astype(np.int64)
                return Layout(int(at), close, starts, ends)
    return None


def pieces(lay: Layout, most: int) -> list[tuple[int, int]]:
    """Runs of consecutive elements [first, last) of about `most` bytes each (one element at least)."""
    n = len(lay.starts)
    if n == 0:
        return []
    size = (lay.ends - lay.starts + 1).astype(np.int64)
    group = np.cumsum(size) // max(int(most), 1)
    firsts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return list(zip(firsts.tolist(), np.r_[firsts[1:], n].tolist()))


def write_piece(path: Path, lay: Layout, first: int, last: int, out: Path) -> None:
    """The trace object of `path` with elements [first, last) of its `requests`, into `out`."""
    spans = [(0, lay.open + 1), (int(lay.starts[first]), int(lay.ends[last - 1])), (lay.close, None)]
    with open(path, "rb") as src, open(out, "wb") as dst:
        for begin, end in spans:  # three spans, copied in blocks
            src.seek(begin)
            left = None if end is None else end - begin
            while left is None or left > 0:
                block = src.read(BLOCK if left is None else min(BLOCK, left))
                if not block:
                    break
                dst.write(block)
                if left is not None:
                    left -= len(block)
