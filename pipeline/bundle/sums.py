"""The bundle fit's first pass: per-group sums over batches of rows in arrival order.

Memory is bounded by clients x windows x distinct values, never by rows: each batch is reduced to
per-group sums (counts, inter-arrival moments, value counts) and the partial sums are merged
(pipeline/rows/moments.py). Inter-arrivals carry each client's last arrival from one batch to the
next. Clients are small integers looked up from the rows' group codes (pipeline/rows/codes.py); a
batch's rows are put in client order once, its sums per client and window are numpy sums over
runs of rows, its value counts one Polars group-by per field. `characterize` feeds these consumers
the same batches as the stages' gap statistics (pipeline/rows/)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from servetrace.arrays import Scratch, numpy_of
from servetrace.bundle import lengths
from servetrace.bundle.model import CATEGORY_FIELDS
from servetrace.errors import ServetraceError
from servetrace.rows.codes import Codes
from servetrace.rows.moments import SUMS, merge_sums, segment_sums, starts_of
from servetrace.rows.read import Batch, Unsorted, column

COMPACT_EVERY = 16  # partial sums merged every this many batches


def merge_counts(parts: list[pl.DataFrame], keys: list[str], n: str = "n") -> pl.DataFrame:
    return pl.concat(parts).group_by(keys).agg(pl.col(n).sum())


class Clients:
    """The client of each row as an integer: the index of its group's name among the sorted names,
    the smallest groups beyond `max_clients` merged into `other`."""

    def __init__(self, groups: Codes, max_clients: int, other: str):
        counts = groups.counts
        present = np.flatnonzero(counts)
        ranked = pl.DataFrame({"client": [groups.levels[i] for i in present], "n": counts[present], "level": present})
        ranked = ranked.sort(["n", "client"], descending=[True, False])
        names = ranked["client"].to_list()
        merged = [c if i < max_clients - 1 or len(names) <= max_clients else other for i, c in enumerate(names)]
        self.names = sorted(set(merged))
        index = {c: i for i, c in enumerate(self.names)}
        self.table = np.full(len(groups.levels), -1, np.int32)
        self.table[ranked["level"].to_numpy()] = [index[m] for m in merged]
        self.codes = groups.codes

    def of(self, start: int, n: int, out: np.ndarray | None = None) -> np.ndarray:
        """The clients of rows start .. start + n - 1 (file order), in `out` when given."""
        return np.take(self.table, self.codes[start: start + n], out=out, mode="clip" if out is not None else "raise")


def _sort_order(client: np.ndarray) -> np.ndarray:
    """Rows in client order, arrival order kept within a client (a radix sort on 16-bit codes)."""
    return np.argsort(client.astype(np.uint16) if client.size and client.max() < 1 << 16 else client, kind="stable")


@dataclass
class ByClient:
    """A batch's rows in client order (arrival order kept within a client): the order, clients,
    inter-arrivals, where each client's rows begin, and the inter-arrivals whose both ends lie in
    one window (NaN for the others: a window's statistics never count a gap across its edge)."""
    order: np.ndarray | None  # None: already in client order (a single client)
    client: np.ndarray
    x: np.ndarray
    starts: np.ndarray
    x_window: np.ndarray

    def take(self, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """`values` in client order (in `out`, a work array of their length and type, when given)."""
        if self.order is None:
            return values
        return np.take(values, self.order, out=out, mode="clip" if out is not None else "raise")  # faster than indexing


class Gaps:
    """Each row's time since the same client's previous arrival (NaN for a client's first row),
    floored at IAT_FLOOR_S, with each client's last arrival and its window carried to the next batch.
    What a call returns lies in work arrays the next call reuses (pipeline/arrays.py Scratch)."""

    def __init__(self, n_clients: int):
        self.last = np.full(n_clients, np.nan)
        self.last_window = np.full(n_clients, -1, np.int64)
        self.scratch = Scratch()

    def __call__(self, client: np.ndarray, t: np.ndarray, window: np.ndarray) -> ByClient:
        from servetrace.bundle.arrivals import IAT_FLOOR_S

        work, n = self.scratch, t.size
        if self.last.size == 1:  # one client: rows already in client order
            order, c, s, w, starts = None, client, t, window, np.zeros(min(t.size, 1), np.int64)
        else:
            order = _sort_order(client)
            s = np.take(t, order, out=work("t", n), mode="clip")
            w = np.take(window, order, out=work("window", n, window.dtype), mode="clip")
            # the sorted clients: each repeated as often as it occurs (no gather through `order`)
            counts = np.bincount(client, minlength=self.last.size)
            c = np.repeat(np.arange(self.last.size, dtype=client.dtype), counts)
            present = np.flatnonzero(counts)
            starts = (np.cumsum(counts) - counts)[present]
        prev, prev_w = work("prev", n, s.dtype), work("prev_window", n, w.dtype)
        prev[1:], prev_w[1:] = s[:-1], w[:-1]
        prev[starts], prev_w[starts] = self.last[c[starts]], self.last_window[c[starts]]
        ends = np.r_[starts[1:] - 1, c.size - 1] if c.size else starts
        self.last[c[ends]], self.last_window[c[ends]] = s[ends], w[ends]
        x = np.maximum(np.subtract(s, prev, out=prev), IAT_FLOOR_S, out=prev)  # the gaps, in place of prev
        x_window = work("x_window", n)
        x_window.fill(np.nan)  # a gap across a window edge
        np.copyto(x_window, x, where=np.equal(prev_w, w, out=work("same", n, bool)))
        return ByClient(order, c, x, starts, x_window)


class TickSquares:
    """Per group, the sum over the source's clock ticks of (the group's arrivals in the tick)^2, for
    the dispersion of counts at the clock's resolution (bundle/arrivals.py): a tick a batch edge
    cuts counts whole (each client's last tick is carried to the next batch)."""

    def __init__(self, n_clients: int):
        self.tick = np.full(n_clients, -1, np.int64)
        self.n = np.zeros(n_clients)

    def __call__(self, client: np.ndarray, tick: np.ndarray, group_starts: np.ndarray) -> np.ndarray:
        """`client`, `tick`: rows in client order, ticks ascending within a client; groups begin
        at `group_starts` and never split a client's tick."""
        if client.size == 0:
            return np.zeros(group_starts.size)
        run = np.r_[0, np.flatnonzero((client[1:] != client[:-1]) | (tick[1:] != tick[:-1])) + 1]
        n = np.diff(np.r_[run, client.size]).astype(np.float64)
        rc, rt = client[run], tick[run]
        first = np.r_[True, rc[1:] != rc[:-1]]
        before = np.where(first & (self.tick[rc] == rt), self.n[rc], 0.0)  # the part an earlier batch counted
        total = n + before
        last = np.r_[rc[1:] != rc[:-1], True]
        self.tick[rc[last]], self.n[rc[last]] = rt[last], total[last]
        group = np.searchsorted(group_starts, run, side="right") - 1
        return np.bincount(group, weights=total**2 - before**2, minlength=group_starts.size)


class Accumulator:
    """Partial sums per group, merged every COMPACT_EVERY batches. Rows come in arrival order:
    once a batch begins past every window of the parts so far, those windows are complete, and
    their sums are merged once and set aside."""

    def __init__(self, keys: list[str], merge: Callable[[list[pl.DataFrame], list[str]], pl.DataFrame]):
        self.keys, self.merge, self.parts, self.done = keys, merge, [], []
        self.last = None  # the last window index of the parts

    def add(self, part: pl.DataFrame, first: int, last: int) -> None:
        """Adds the sums of a batch whose rows fall in windows `first` to `last` (indices)."""
        if self.parts and first > self.last:
            self.done.append(self.merge(self.parts, self.keys))
            self.parts = []
        self.parts.append(part)
        self.last = last
        if len(self.parts) >= COMPACT_EVERY:
            self.parts = [self.merge(self.parts, self.keys)]

    def result(self, empty: pl.DataFrame) -> pl.DataFrame:
        frames = self.done + ([self.merge(self.parts, self.keys)] if self.parts else [])
        return pl.concat(frames) if frames else empty


class Grid:
    """Windows and dataset windows of arrivals: their indices from g0, and their starts, by the
    expressions the fit has always used."""

    def __init__(self, g0: int, window_s: int, dataset_window_s: int, clock_s: float | None = None):
        self.g0, self.window_s, self.dataset_window_s = g0, window_s, dataset_window_s
        self.clock_s = clock_s  # the source's coarse clock (stats/clock.py), or None
        a = pl.col("arrival_s")
        self.window = (((a - g0) // window_s).cast(pl.Int64) * window_s + g0).alias("window_start_s")
        self.dataset = (((a - g0) // dataset_window_s).cast(pl.Int64) * dataset_window_s + g0).alias("dataset_start_s")

    def indices(self, t: np.ndarray, work: Scratch | None = None,
                temp: Scratch | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(window, dataset window) index of each arrival, the starts being g0 + index x width: the
        expressions' floor division, which multiplies by the width's reciprocal (a test holds them equal).
        `work`: work arrays to compute them in (`temp`: for the steps between, else `work`)."""
        if work is None:
            x = t - float(self.g0)
            return (np.floor(x * (1.0 / self.window_s)).astype(np.int64),
                    np.floor(x * (1.0 / self.dataset_window_s)).astype(np.int64))
        temp = temp or work
        x, f = np.subtract(t, float(self.g0), out=temp("grid.x", t.size)), temp("grid.f", t.size)
        out = []
        for width, name in ((self.window_s, "grid.window"), (self.dataset_window_s, "grid.dataset")):
            np.floor(np.multiply(x, 1.0 / width, out=f), out=f)
            index = work(name, t.size, np.int64)
            index[...] = f
            out.append(index)
        return out[0], out[1]


@dataclass
class Rows:
    """A batch as the passes use it: arrivals, client indices, window and dataset-window indices
    (ascending), failures (never null) and the length columns as read; `start` is the row number
    of its first row, `batch` the columns as read (other consumers of the stream read theirs)."""
    t: np.ndarray
    client: np.ndarray
    window: np.ndarray
    dataset: np.ndarray
    failed: np.ndarray
    inputs: pl.DataFrame
    start: int = 0
    batch: Batch | None = field(default=None, repr=False)

    def lazy(self, **cols: np.ndarray) -> pl.LazyFrame:
        """The length columns, `failed` and the given columns."""
        return self.inputs.lazy().with_columns(pl.Series("failed", self.failed), *[pl.Series(k, v) for k, v in cols.items()])


class RowReader:
    """Batches (in arrival order, else Unsorted) as Rows, counting the rows and the last arrival."""

    def __init__(self, batches: Iterator[Batch], inputs: list[str], clients: Clients, grid: Grid):
        self.batches, self.inputs, self.clients, self.grid = batches, inputs, clients, grid
        self.rows, self.last = 0, -np.inf
        # each batch's clients and windows in work arrays, two sets taken in turn: the consumers work
        # on one batch while the next is made (pipeline/rows/read.py run)
        self.work, self.temp = (Scratch(), Scratch()), Scratch()  # temp: what no consumer sees

    def __iter__(self) -> Iterator[Rows]:
        for b in self.batches:
            arrival = column(b, "arrival_s")
            if arrival.null_count:
                raise ServetraceError("requests: arrival_s has nulls (every request needs an arrival time)")
            if b.num_rows == 0:
                continue
            t = numpy_of(arrival)  # through the buffers: polars' Arrow import loads pyarrow.compute
            if t[0] < self.last or not pl.Series(t).is_sorted():
                raise Unsorted()
            failed = (pl.from_arrow(b.select(["failed"]))["failed"].fill_null(False).to_numpy() if "failed" in self.inputs
                      else np.zeros(t.size, bool))
            start, self.rows, self.last = self.rows, self.rows + t.size, float(t[-1])
            work = self.work[0]
            self.work = self.work[::-1]
            yield Rows(t, self.clients.of(start, t.size, work("client", t.size, self.clients.table.dtype)),
                       *self.grid.indices(t, work, self.temp), failed, pl.from_arrow(b.select(self.inputs)), start, b)


class ArrivalSums:
    """Per (client, window) and per window of all rows: the sums of the inter-arrivals inside the
    window, and failures; per client: the sums of all its inter-arrivals; the first `ks_sample`
    inter-arrivals of each client; whether a failure ever keeps an output."""

    def __init__(self, n_clients: int, grid: Grid, ks_sample: int):
        self.k, self.grid, self.gaps, self.all_gaps = n_clients, grid, Gaps(n_clients), Gaps(1)
        self.ticks = (TickSquares(n_clients), TickSquares(n_clients), TickSquares(1))
        self.per_window = Accumulator(["client", "window_start_s"], merge_sums)
        self.per_client = Accumulator(["client"], merge_sums)
        self.overall = Accumulator(["window_start_s"], merge_sums)
        self.heads: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        self.need = np.full(n_clients, ks_sample, np.int64)
        self.nonzero = False
        self.scratch = Scratch()  # work arrays reused batch after batch

    def add(self, r: Rows) -> None:
        if not self.nonzero and r.failed.any():
            self.nonzero = bool((r.inputs["output_tokens"].filter(pl.Series(r.failed)).fill_null(0) != 0).any())
        work, n = self.scratch, r.t.size
        w0, nw = r.window[0], int(r.window[-1] - r.window[0]) + 1
        by = self.gaps(r.client, r.t, r.window)
        failed = by.take(r.failed, work("failed", n, r.failed.dtype))
        tick = None if self.grid.clock_s is None else self._ticks(r.t)
        key = work("key", n, np.int64)
        key[...] = by.client
        key *= nw
        key += by.take(r.window, work("client_tick", n, r.window.dtype))  # free until the ticks below
        key -= w0  # client x nw + (window - w0)
        groups, sums = segment_sums(key, by.x_window, failed, work)
        if tick is not None:
            sums["sum_tick_n2"] = self.ticks[0](by.client, by.take(tick, work("client_tick", n, np.int64)), starts_of(key))
        self.per_window.add(pl.DataFrame({"client": pl.Series(groups // nw, dtype=pl.Int32),
                                          "window_start_s": self._start(w0 + groups % nw), **sums}), w0, r.window[-1])
        groups, sums = segment_sums(by.client, by.x, failed, work)
        if tick is not None:
            sums["sum_tick_n2"] = self.ticks[1](by.client, by.take(tick, work("client_tick", n, np.int64)), starts_of(by.client))
        self.per_client.add(pl.DataFrame({"client": pl.Series(groups, dtype=pl.Int32), **sums}), 0, 0)  # never complete
        one = work("one_client", n, np.int32)
        one.fill(0)
        groups, sums = segment_sums(r.window, self.all_gaps(one, r.t, r.window).x_window, r.failed, work)
        if tick is not None:
            sums["sum_tick_n2"] = self.ticks[2](one, tick, starts_of(r.window))
        self.overall.add(pl.DataFrame({"window_start_s": self._start(groups), **sums}), w0, r.window[-1])
        if self.need.any():
            _take_heads(by, self.need, self.heads)

    def _ticks(self, t: np.ndarray) -> np.ndarray:
        """Each arrival's tick of the source's clock, from g0 (in a work array)."""
        x = np.subtract(t, self.grid.g0, out=self.scratch("segment.x", t.size))  # free until segment_sums
        np.divide(x, self.grid.clock_s, out=x)
        np.floor(x, out=x)
        out = self.scratch("tick", t.size, np.int64)
        out[...] = x
        return out

    def _start(self, index: np.ndarray) -> pl.Series:
        return pl.Series(index * self.grid.window_s + self.grid.g0, dtype=pl.Int64)

    def result(self) -> dict:
        for work in (self.scratch, self.gaps.scratch, self.all_gaps.scratch):
            work.clear()
        empty = pl.DataFrame(schema={"client": pl.Int32, "window_start_s": pl.Int64,
                                     **{k: pl.Float64 if k.startswith(("sum", "m2")) else pl.Int64 for k in SUMS}})
        return {"per_window": self.per_window.result(empty), "per_client": self.per_client.result(empty.drop("window_start_s")),
                "overall": self.overall.result(empty.drop("client")),
                "ks": {i: np.concatenate(h) for i, h in enumerate(self.heads) if h}, "nonzero": self.nonzero}


def _take_heads(by: ByClient, need: np.ndarray, heads: list[list[np.ndarray]]) -> None:
    """Appends to each client's sample its next inter-arrivals in arrival order, up to `need`."""
    for lo, hi in zip(by.starts, np.r_[by.starts[1:], by.client.size]):  # one slice per client of the batch
        c = by.client[lo]
        if need[c] > 0:
            x = by.x[lo:hi]
            x = x[np.isfinite(x)][:need[c]]
            heads[c].append(x)
            need[c] -= x.size


def joint(jnames: tuple[str, ...]) -> pl.Expr:
    return pl.all_horizontal([pl.col(j).is_not_null() for j in jnames])


class LengthCounts:
    """Per field: how often each value occurs per (client, dataset window, whether the row has
    every joint field), over requests that did not fail."""

    def __init__(self, grid: Grid, category: str):
        self.grid, self.category = grid, category
        self.names, self.jnames = CATEGORY_FIELDS[category], lengths.joint_fields(category)
        self.acc = {n: Accumulator(["client", "dataset_start_s", n, "_joint"], merge_counts) for n in self.names}

    def add(self, r: Rows) -> None:
        nd = int(r.dataset[-1] - r.dataset[0]) + 1  # dataset windows counted from the batch's first
        cell = (r.client.astype(np.int64) * nd + (r.dataset - r.dataset[0])) * 2
        fields = lengths.length_fields(r.lazy(_cell=cell), self.category, ("_cell",)).with_columns(
            pl.col("_cell") + joint(self.jnames).cast(pl.Int64)).collect().lazy()  # computed once for every field
        counts = pl.collect_all([fields.group_by("_cell", n).agg(pl.len().cast(pl.Int64).alias("n")) for n in self.names])
        for n, f in zip(self.names, counts):
            cell = f["_cell"].to_numpy()
            d = r.dataset[0] + cell // 2 % nd
            self.acc[n].add(f.select(pl.Series("client", cell // 2 // nd, dtype=pl.Int32),
                                     pl.Series("dataset_start_s", d * self.grid.dataset_window_s + self.grid.g0, dtype=pl.Int64),
                                     n, pl.Series("_joint", cell % 2 == 1), "n"), r.dataset[0], r.dataset[-1])

    def result(self) -> dict[str, pl.DataFrame]:
        return {n: self.acc[n].result(None) for n in self.names}
