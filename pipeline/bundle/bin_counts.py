"""Requests per modulation bin, of the whole trace and of its dominant clients, in one read of the
arrival column in batches, with the clients' group codes characterize already holds (two bytes a
row): no string column is read and nothing is grouped by name. A bin is
floor((arrival_s - g0) / bin_s), the expression of `arrival_model.with_arrival_model`'s Polars
aggregation, so the counts are the same; memory is one batch plus the occupied bins.
`BinCounter` counts the same on the rows of the bundle fit's second pass (bundle/fit.py), which
reads the arrivals anyway: characterize then reads them no third time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from servetrace.arrays import numpy_of
from servetrace.rows import read
from servetrace.rows.codes import Codes

Counts = tuple[np.ndarray, np.ndarray]  # (bin, requests), bins ascending and distinct


def runs(b: np.ndarray) -> Counts:
    """The distinct values of b and how often each occurs: by runs when b is ascending (a table in
    arrival order), else by a sort."""
    if len(b) == 0:
        return b.astype(np.int64), np.zeros(0, np.int64)
    if bool(np.all(b[1:] >= b[:-1])):
        starts = np.flatnonzero(np.concatenate(([True], b[1:] != b[:-1])))
        return b[starts], np.diff(np.append(starts, len(b)))
    return np.unique(b, return_counts=True)


def merged(parts: list[Counts]) -> Counts:
    """The counts of several batches added up per bin (a bin may straddle two batches)."""
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    bins, n = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if len(bins) and not bool(np.all(bins[1:] > bins[:-1])):
        bins, at = np.unique(bins, return_inverse=True)
        total = np.zeros(len(bins), np.int64)
        np.add.at(total, at.reshape(-1), n)
        n = total
    return bins, n


@dataclass(frozen=True)
class BinCounts:
    """What `bin_counts` returns, with the first bin's start and the width it was counted with."""
    g0: float
    bin_s: float
    whole: Counts
    own: dict[str, Counts]

    def fits(self, g0: float, bin_s: float, ids: list[str]) -> bool:
        return self.g0 == g0 and self.bin_s == bin_s and set(ids) == set(self.own)


class BinCounter:
    """`bin_counts` as a consumer of the fit's row batches (bundle/sums.py Rows): per bin, the
    requests of every row and of each client in `clients` (id -> the fit's client index)."""

    def __init__(self, g0: float, bin_s: float, clients: dict[str, int]) -> None:
        self.g0, self.bin_s, self.clients = g0, bin_s, clients
        self.whole: list[Counts] = []
        self.own: dict[str, list[Counts]] = {cid: [] for cid in clients}

    def add(self, r) -> None:
        b = np.floor((r.t - self.g0) / self.bin_s).astype(np.int64)
        self.whole.append(runs(b))
        for cid, c in self.clients.items():
            self.own[cid].append(runs(b[r.client == c]))

    def result(self) -> BinCounts:
        return BinCounts(self.g0, self.bin_s, merged(self.whole), {cid: merged(parts) for cid, parts in self.own.items()})


def bin_counts(path: Path, g0: float, bin_s: float, groups: Codes | None = None,
               ids: list[str] = ()) -> tuple[Counts, dict[str, Counts]]:
    """Requests per bin of the table at `path` and, for each id of `ids` (a level of `groups`, the
    group of every row in file order), of its rows."""
    level = {cid: groups.levels.index(cid) for cid in ids} if groups is not None else {}
    whole: list[Counts] = []
    own: dict[str, list[Counts]] = {cid: [] for cid in level}
    at = 0
    for batch in read.file_batches(path)(["arrival_s"]):
        b = np.floor((numpy_of(batch.column("arrival_s")) - g0) / bin_s).astype(np.int64)
        whole.append(runs(b))
        if level:
            g = groups.codes[at: at + len(b)]
            for cid, k in level.items():
                own[cid].append(runs(b[g == k]))
        at += len(b)
    return merged(whole), {cid: merged(parts) for cid, parts in own.items()}
