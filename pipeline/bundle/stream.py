"""The bundle fit's sums, accumulated over batches of rows in arrival order.

Memory is bounded by clients x windows x distinct values, never by rows: each batch is reduced to
per-group sums (counts, inter-arrival moments, value counts) and the partial sums are merged.
Inter-arrivals carry each client's last arrival from one batch to the next. Variances merge
exactly (Chan et al.: the sum of the parts' squared deviations plus n_i (mean_i - mean)^2).

A batch is Arrow columns (strings as dictionary codes where the file stores them so). Clients are
small integers; a batch's rows are put in client order once, its sums per client and window are
numpy sums over runs of rows, its value counts one Polars group-by per field."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from servetrace import grouping
from servetrace.bundle import lengths
from servetrace.bundle.model import CATEGORY_FIELDS
from servetrace.errors import ServetraceError

BATCH_ROWS = 1 << 20
COMPACT_EVERY = 16  # partial sums merged every this many batches

Batch = pa.RecordBatch | pa.Table
# columns -> a fresh iterator over the table's rows in batches, in file order
Batches = Callable[[list[str]], Iterator[Batch]]


def frame_batches(frame: pl.DataFrame, rows: int | None = None) -> Batches:
    def read(cols: list[str]) -> Iterator[Batch]:
        n = rows or BATCH_ROWS
        for lo in range(0, frame.height, n):
            yield frame.slice(lo, n).select(cols).to_arrow()
    return read


def file_batches(path: Path, rows: int | None = None) -> Batches:
    """Batches of a Parquet file, string columns read as dictionary codes, the next batch decoded
    on a second thread while the caller works on the current one."""
    def read(cols: list[str]) -> Iterator[Batch]:
        import pyarrow.parquet as pq

        try:
            schema = pq.read_schema(path)
            strings = [c for c in cols if pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type)]
            # pre_buffer=False: pre-buffered column ranges stay cached for the file's lifetime, which
            # made memory grow by ~4 MB a batch (read back over 100 M rows: 0.64 GB against 0.23 GB)
            f = pq.ParquetFile(path, pre_buffer=False, read_dictionary=strings)
            yield from _ahead(f.iter_batches(batch_size=rows or BATCH_ROWS, columns=cols))
        except (OSError, ValueError) as exc:  # pyarrow's read errors (ArrowInvalid is a ValueError)
            raise ServetraceError(f"{path}: not a readable Parquet table ({str(exc).splitlines()[0]})") from None
    return read


def _ahead(items: Iterator) -> Iterator:
    """The items of `items`, the next one produced on a worker thread while this one is used."""
    with ThreadPoolExecutor(1) as pool:
        nxt = pool.submit(next, items, None)
        while (item := nxt.result()) is not None:
            nxt = pool.submit(next, items, None)
            yield item


def column(b: Batch, name: str) -> pa.Array:
    col = b.column(name)
    if isinstance(col, pa.ChunkedArray):
        if pa.types.is_dictionary(col.type):  # chunks may hold different dictionaries
            col = col.cast(col.type.value_type)
        col = col.combine_chunks()
    return col


class Unsorted(Exception):
    """The table is not sorted by arrival_s (streamed inter-arrivals need arrival order)."""


# ---------------------------------------------------------------- groups as dense integer codes

def coded(arr: pa.Array) -> tuple[np.ndarray, pl.Series]:
    """Each row's code and each code's name (its value as text; the last code, "(none)", is null's).
    Polars converts the Arrow arrays: pyarrow's own conversions import pandas (0.3 s)."""
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    names = pl.Series(arr.dictionary).cast(pl.String).fill_null(grouping.NONE)
    codes = pl.Series(arr.indices).fill_null(len(names)).to_numpy()
    return codes, names.extend_constant(grouping.NONE, 1)


class Combinations:
    """The grouping columns' value combinations in a batch: each row's code (mixed radix over
    the columns' codes, in [0, size)) and the name of a code (values joined by "|", nulls as
    "(none)")."""

    def __init__(self, b: Batch, cols: list[str]):
        self.code, self.size, self.parts = None, 1, []
        for c in cols:
            cc, names = coded(column(b, c))
            self.code = cc if self.code is None else self.code.astype(np.int64) * len(names) + cc
            self.size *= len(names)
            self.parts.append(names)

    def names(self, codes: np.ndarray) -> pl.Series:
        pieces, rest = [], codes
        for names in reversed(self.parts):
            pieces.append(names.gather(rest % len(names)).alias(str(len(pieces))))
            rest = rest // len(names)
        if len(pieces) == 1:
            return pieces[0].alias("client")
        return pl.DataFrame(pieces[::-1]).select(pl.concat_str(pl.all(), separator=grouping.SEPARATOR).alias("client")).to_series()

    def dense(self) -> bool:
        return self.size <= 4 * self.code.size + (1 << 16)

    def counts(self) -> pl.DataFrame:
        """(client, n): rows per combination present."""
        if self.dense():
            n = np.bincount(self.code, minlength=self.size)
            present = np.flatnonzero(n)
            n = n[present]
        else:
            present, n = np.unique(self.code, return_counts=True)
        return pl.DataFrame([self.names(present), pl.Series("n", n, dtype=pl.Int64)])


def present(batches: Batches, col: str) -> bool:
    return any(b.column(col).null_count < b.num_rows for b in batches([col]))


def varies(batches: Batches, col: str) -> bool:
    """More than one distinct value (null counts as one), stopping at the second."""
    seen = None
    for b in batches([col]):
        arr = column(b, col)
        values = pl.Series(arr).cast(pl.String).unique()
        seen = values if seen is None else pl.concat([seen, values]).unique()
        if seen.len() > 1:
            return True
    return False


def _merge_counts(parts: list[pl.DataFrame], keys: list[str], n: str = "n") -> pl.DataFrame:
    return pl.concat(parts).group_by(keys).agg(pl.col(n).sum())


class Survey:
    """One pass over the grouping columns and category markers: how many rows each grouping
    combination has (hence the clients), and the category."""

    def __init__(self, batches: Batches, cols: list[str], markers: list[str]):
        self.positive = dict.fromkeys(markers, False)
        parts: list[pl.DataFrame] = []
        for b in batches([*cols, *markers]) if cols or markers else ():
            for c in markers:
                self.positive[c] |= bool((pl.Series(column(b, c)) > 0).any())
            if cols:
                parts.append(Combinations(b, cols).counts())
                if len(parts) >= COMPACT_EVERY:
                    parts = [_merge_counts(parts, ["client"])]
        self.combos = _merge_counts(parts, ["client"]) if parts else None

    def category(self) -> str:
        if self.positive.get("reason_tokens"):
            return "reason"
        return "multimodal" if self.positive.get("image_count") else "language"


class Clients:
    """The client of each row as an integer: the index of its name among the sorted names, the
    smallest clients beyond `max_clients` merged into `other`."""

    def __init__(self, cols: list[str], combos: pl.DataFrame | None, max_clients: int, other: str):
        self.cols = cols
        if not cols:
            self.names, self.lookup = ["all"], None
            return
        counts = combos.sort(["n", "client"], descending=[True, False])
        names = counts["client"].to_list()
        merged = [c if i < max_clients - 1 or len(names) <= max_clients else other for i, c in enumerate(names)]
        self.names = sorted(set(merged))
        index = {c: i for i, c in enumerate(self.names)}
        self.lookup = (pl.Series(names, dtype=pl.String), pl.Series([index[m] for m in merged], dtype=pl.Int32))
        self._parts: list[pl.Series] = []

    def of(self, batch: Batch) -> np.ndarray:
        if self.lookup is None:
            return np.zeros(batch.num_rows, np.int32)
        combos = Combinations(batch, self.cols)
        if not combos.dense():
            codes, index = np.unique(combos.code, return_inverse=True)
            return np.take(self._clients(combos, codes), index.reshape(-1))
        same = len(combos.parts) == len(self._parts) and all(a.equals(b) for a, b in zip(combos.parts, self._parts))
        if not same:  # the batches of a row group share its dictionaries
            self._parts, self._table = combos.parts, self._clients(combos, np.arange(combos.size))
        return np.take(self._table, combos.code)

    def _clients(self, combos: Combinations, codes: np.ndarray) -> np.ndarray:
        old, new = self.lookup
        return combos.names(codes).replace_strict(old, new, return_dtype=pl.Int32, default=-1).to_numpy()


def _sort_order(client: np.ndarray) -> np.ndarray:
    """Rows in client order, arrival order kept within a client (a radix sort on 16-bit codes)."""
    return np.argsort(client.astype(np.uint16) if client.size and client.max() < 1 << 16 else client, kind="stable")


def _starts(key: np.ndarray) -> np.ndarray:
    """Where each run of equal keys begins."""
    return np.r_[0, np.flatnonzero(key[1:] != key[:-1]) + 1] if key.size else np.zeros(0, np.int64)


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

    def take(self, values: np.ndarray) -> np.ndarray:
        return values if self.order is None else np.take(values, self.order)  # np.take: faster than indexing


class Gaps:
    """Each row's time since the same client's previous arrival (NaN for a client's first row),
    floored at IAT_FLOOR_S, with each client's last arrival and its window carried to the next batch."""

    def __init__(self, n_clients: int):
        self.last = np.full(n_clients, np.nan)
        self.last_window = np.full(n_clients, -1, np.int64)

    def __call__(self, client: np.ndarray, t: np.ndarray, window: np.ndarray) -> ByClient:
        from servetrace.bundle.arrivals import IAT_FLOOR_S

        if self.last.size == 1:  # one client: rows already in client order
            order, c, s, w, starts = None, client, t, window, np.zeros(min(t.size, 1), np.int64)
        else:
            order = _sort_order(client)
            c, s, w = np.take(client, order), np.take(t, order), np.take(window, order)
            starts = _starts(c)
        prev, prev_w = np.empty_like(s), np.empty_like(w)
        prev[1:], prev_w[1:] = s[:-1], w[:-1]
        prev[starts], prev_w[starts] = self.last[c[starts]], self.last_window[c[starts]]
        ends = np.r_[starts[1:] - 1, c.size - 1] if c.size else starts
        self.last[c[ends]], self.last_window[c[ends]] = s[ends], w[ends]
        x = np.maximum(s - prev, IAT_FLOOR_S)
        return ByClient(order, c, x, starts, np.where(prev_w == w, x, np.nan))


# ---------------------------------------------------------------- partial sums and their merge

SUMS = ("requests", "n_iat", "sum_x", "sum_log", "m2", "failed")


def segment_sums(key: np.ndarray, x: np.ndarray, failed: np.ndarray) -> tuple[np.ndarray, dict]:
    """(the distinct keys, their sums) of rows whose keys ascend: requests, inter-arrival count,
    sum, sum of logs, squared deviations from the group's mean (m2) and failures, of
    inter-arrivals `x` (NaN: none, a client's first row)."""
    starts = _starts(key)
    requests = np.diff(np.r_[starts, key.size])
    ok = np.isfinite(x)
    every = bool(ok.all())
    n = requests if every else np.add.reduceat(ok, starts, dtype=np.int64)
    sum_x = np.add.reduceat(x if every else np.where(ok, x, 0.0), starts)
    dev = (x - np.repeat(sum_x / np.maximum(n, 1), requests)) ** 2
    sums = {"requests": requests, "n_iat": n, "sum_x": sum_x,
            "sum_log": np.add.reduceat(np.log(x if every else np.where(ok, x, 1.0)), starts),
            "m2": np.add.reduceat(dev if every else np.where(ok, dev, 0.0), starts),
            "failed": np.add.reduceat(failed, starts, dtype=np.int64)}
    return key[starts], {k: v if k.startswith(("sum", "m2")) else v.astype(np.int64) for k, v in sums.items()}


def merge_sums(parts: list[pl.DataFrame], keys: list[str]) -> pl.DataFrame:
    """The sums of the union of the parts' rows, per group of `keys`."""
    f = pl.concat(parts)
    n, sx = pl.col("n_iat"), pl.col("sum_x")
    mean = sx.sum().over(keys) / n.sum().over(keys)
    spread = pl.when(n > 0).then(n * (sx / n - mean) ** 2).otherwise(0.0)
    return f.with_columns(spread.alias("_d")).group_by(keys).agg(
        *[pl.col(c).sum() for c in SUMS if c != "m2"], (pl.col("m2").sum() + pl.col("_d").sum()).alias("m2")
    ).select(*keys, *SUMS)


def moments(sums: pl.DataFrame) -> pl.DataFrame:
    """iat_mean and iat_std (sample, ddof 1) from the merged sums."""
    n = pl.col("n_iat")
    return sums.with_columns(
        pl.when(n > 0).then(pl.col("sum_x") / n).alias("iat_mean"),
        pl.when(n > 1).then((pl.col("m2") / (n - 1)).sqrt()).alias("iat_std"))


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


# ---------------------------------------------------------------- the passes

class Grid:
    """Windows and dataset windows of arrivals: their indices from g0, and their starts, by the
    expressions the fit has always used."""

    def __init__(self, g0: int, window_s: int, dataset_window_s: int):
        self.g0, self.window_s, self.dataset_window_s = g0, window_s, dataset_window_s
        a = pl.col("arrival_s")
        self.window = (((a - g0) // window_s).cast(pl.Int64) * window_s + g0).alias("window_start_s")
        self.dataset = (((a - g0) // dataset_window_s).cast(pl.Int64) * dataset_window_s + g0).alias("dataset_start_s")

    def indices(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(window, dataset window) index of each arrival, the starts being g0 + index x width: the
        expressions' floor division, which multiplies by the width's reciprocal (a test holds them equal)."""
        x = t - float(self.g0)
        return (np.floor(x * (1.0 / self.window_s)).astype(np.int64),
                np.floor(x * (1.0 / self.dataset_window_s)).astype(np.int64))


@dataclass
class Rows:
    """A batch as the passes use it: arrivals, client indices, window and dataset-window indices
    (ascending), failures (never null) and the length columns as read."""
    t: np.ndarray
    client: np.ndarray
    window: np.ndarray
    dataset: np.ndarray
    failed: np.ndarray
    inputs: pl.DataFrame

    def lazy(self, **cols: np.ndarray) -> pl.LazyFrame:
        """The length columns, `failed` and the given columns."""
        return self.inputs.lazy().with_columns(pl.Series("failed", self.failed), *[pl.Series(k, v) for k, v in cols.items()])


def first_arrival(batches: Batches) -> float | None:
    """The first row's arrival (the earliest, in a table sorted by arrival); None without rows."""
    for b in batches(["arrival_s"]):
        if b.num_rows:
            v = pl.Series(column(b, "arrival_s"))[0]
            if v is None:
                raise ServetraceError("requests: arrival_s has nulls (every request needs an arrival time)")
            return float(v)
    return None


def run(batches: Batches, cols: list[str], clients: Clients, grid: Grid, *consumers) -> tuple[int, float]:
    """One pass over the table in arrival order, each batch's clients and windows computed once
    and fed to every consumer; (rows, last arrival), or Unsorted."""
    rows, last, pending = 0, -np.inf, []
    inputs = [c for c in cols if c in lengths.LENGTH_INPUTS]
    with ThreadPoolExecutor(len(consumers)) as pool:
        for r in _rows(batches(cols), inputs, clients, grid):
            rows, last = rows + r.t.size, float(r.t[-1])
            for f in pending:  # each consumer sees the batches one at a time, in order
                f.result()
            pending = [pool.submit(consumer.add, r) for consumer in consumers]
        for f in pending:
            f.result()
    return rows, last


def _rows(batches: Iterator[Batch], inputs: list[str], clients: Clients, grid: Grid) -> Iterator[Rows]:
    last = -np.inf
    for b in batches:
        arrival = column(b, "arrival_s")
        if arrival.null_count:
            raise ServetraceError("requests: arrival_s has nulls (every request needs an arrival time)")
        if b.num_rows == 0:
            continue
        t = pl.Series(arrival).to_numpy()
        if t[0] < last or not pl.Series(t).is_sorted():
            raise Unsorted()
        last = t[-1]
        failed = (pl.Series(column(b, "failed")).fill_null(False).to_numpy() if "failed" in inputs
                  else np.zeros(t.size, bool))
        yield Rows(t, clients.of(b), *grid.indices(t), failed, pl.from_arrow(b.select(inputs)))


class ArrivalSums:
    """Per (client, window) and per window of all rows: the sums of the inter-arrivals inside the
    window, and failures; per client: the sums of all its inter-arrivals; the first `ks_sample`
    inter-arrivals of each client; whether a failure ever keeps an output."""

    def __init__(self, n_clients: int, grid: Grid, ks_sample: int):
        self.k, self.grid, self.gaps, self.all_gaps = n_clients, grid, Gaps(n_clients), Gaps(1)
        self.per_window = Accumulator(["client", "window_start_s"], merge_sums)
        self.per_client = Accumulator(["client"], merge_sums)
        self.overall = Accumulator(["window_start_s"], merge_sums)
        self.heads: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        self.need = np.full(n_clients, ks_sample, np.int64)
        self.nonzero = False

    def add(self, r: Rows) -> None:
        if not self.nonzero and r.failed.any():
            self.nonzero = bool((r.inputs["output_tokens"].filter(pl.Series(r.failed)).fill_null(0) != 0).any())
        w0, nw = r.window[0], int(r.window[-1] - r.window[0]) + 1
        by = self.gaps(r.client, r.t, r.window)
        failed = by.take(r.failed)
        groups, sums = segment_sums(by.client.astype(np.int64) * nw + (by.take(r.window) - w0), by.x_window, failed)
        self.per_window.add(pl.DataFrame({"client": pl.Series(groups // nw, dtype=pl.Int32),
                                          "window_start_s": self._start(w0 + groups % nw), **sums}), w0, r.window[-1])
        groups, sums = segment_sums(by.client, by.x, failed)
        self.per_client.add(pl.DataFrame({"client": pl.Series(groups, dtype=pl.Int32), **sums}), 0, 0)  # never complete
        groups, sums = segment_sums(r.window, self.all_gaps(np.zeros(r.t.size, np.int32), r.t, r.window).x_window, r.failed)
        self.overall.add(pl.DataFrame({"window_start_s": self._start(groups), **sums}), w0, r.window[-1])
        if self.need.any():
            _take_heads(by, self.need, self.heads)

    def _start(self, index: np.ndarray) -> pl.Series:
        return pl.Series(index * self.grid.window_s + self.grid.g0, dtype=pl.Int64)

    def result(self) -> dict:
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


def _joint(jnames: tuple[str, ...]) -> pl.Expr:
    return pl.all_horizontal([pl.col(j).is_not_null() for j in jnames])


class LengthCounts:
    """Per field: how often each value occurs per (client, dataset window, whether the row has
    every joint field), over requests that did not fail."""

    def __init__(self, grid: Grid, category: str):
        self.grid, self.category = grid, category
        self.names, self.jnames = CATEGORY_FIELDS[category], lengths.joint_fields(category)
        self.acc = {n: Accumulator(["client", "dataset_start_s", n, "_joint"], _merge_counts) for n in self.names}

    def add(self, r: Rows) -> None:
        nd = int(r.dataset[-1] - r.dataset[0]) + 1  # dataset windows counted from the batch's first
        cell = (r.client.astype(np.int64) * nd + (r.dataset - r.dataset[0])) * 2
        fields = lengths.length_fields(r.lazy(_cell=cell), self.category, ("_cell",)).with_columns(
            pl.col("_cell") + _joint(self.jnames).cast(pl.Int64)).collect().lazy()  # computed once for every field
        counts = pl.collect_all([fields.group_by("_cell", n).agg(pl.len().cast(pl.Int64).alias("n")) for n in self.names])
        for n, f in zip(self.names, counts):
            cell = f["_cell"].to_numpy()
            d = r.dataset[0] + cell // 2 % nd
            self.acc[n].add(f.select(pl.Series("client", cell // 2 // nd, dtype=pl.Int32),
                                     pl.Series("dataset_start_s", d * self.grid.dataset_window_s + self.grid.g0, dtype=pl.Int64),
                                     n, pl.Series("_joint", cell % 2 == 1), "n"), r.dataset[0], r.dataset[-1])

    def result(self) -> dict[str, pl.DataFrame]:
        return {n: self.acc[n].result(None) for n in self.names}


def midranks(counts: pl.DataFrame, name: str) -> pl.DataFrame:
    """(client, value, centred midrank): the average rank of each value among the client's rows
    (ties share their mean rank, as Spearman's rho ranks them) minus the mean rank (n + 1) / 2."""
    m = counts.filter("_joint").group_by("client", name).agg(pl.col("n").sum()).sort("client", name)
    cum = pl.col("n").cum_sum().over("client")
    total = pl.col("n").sum().over("client")
    return m.select("client", name, "n", (cum - (pl.col("n") - 1) / 2 - (total + 1) / 2).alias(f"_r:{name}"))


class Midranks:
    """Looks up the centred midrank of (client, value) pairs: a table clients x the field's
    distinct values, a value's column found by a dense index of integer values or by a search."""

    def __init__(self, ranks: pl.DataFrame, name: str, n_clients: int):
        v = ranks[name].to_numpy()
        self.values = np.unique(v)
        self.u = self.values.size
        self.table = np.full(n_clients * self.u, np.nan)
        self.table[ranks["client"].to_numpy().astype(np.int64) * self.u + np.searchsorted(self.values, v)] = \
            ranks[f"_r:{name}"].to_numpy()
        self.dense = None
        if self.u and np.issubdtype(v.dtype, np.integer):
            lo, hi = int(self.values[0]), int(self.values[-1])
            if hi - lo < max(4 * self.u, 1 << 20):
                self.lo, self.dense = lo, np.zeros(hi - lo + 1, np.int64)
                self.dense[self.values - lo] = np.arange(self.u)

    def __call__(self, client: np.ndarray, v: np.ndarray) -> np.ndarray:
        col = np.take(self.dense, v - self.lo) if self.dense is not None else np.searchsorted(self.values, v)
        return np.take(self.table, client.astype(np.int64) * self.u + col)


class Powers:
    """The Weibull log-likelihood's sum((iat / scale)^shape) per (client, window) and per client,
    the parameters (w_shape, w_scale) from the first pass."""

    def __init__(self, n_clients: int, grid: Grid, per_window: pl.DataFrame, per_client: pl.DataFrame):
        self.k, self.grid, self.gaps = n_clients, grid, Gaps(n_clients)
        pw = per_window.select((pl.col("window_start_s") * n_clients + pl.col("client")).alias("key"), "w_shape", "w_scale").sort("key")
        self.window_params = tuple(pw[c].to_numpy() for c in ("key", "w_shape", "w_scale"))
        self.client_params = [np.full(n_clients, np.nan) for _ in range(2)]
        for p, c in zip(self.client_params, ("w_shape", "w_scale")):
            p[per_client["client"].to_numpy()] = per_client[c].to_numpy()
        self.per_window = Accumulator(["client", "window_start_s"], _merge_sum_of("sum_wpow"))
        self.client_power, self.client_rows = np.zeros(n_clients), np.zeros(n_clients, np.int64)

    def add(self, r: Rows) -> None:
        by = self.gaps(r.client, r.t, r.window)
        w0, nw = r.window[0], int(r.window[-1] - r.window[0]) + 1
        key = by.client.astype(np.int64) * nw + (by.take(r.window) - w0)
        starts = _starts(key)
        client, start = key[starts] // nw, (w0 + key[starts] % nw) * self.grid.window_s + self.grid.g0
        used, total = _power(starts, *_lookup(self.window_params, start * self.k + client), np.log(by.x_window))
        self.per_window.add(pl.DataFrame({"client": pl.Series(client[used], dtype=pl.Int32),
                                          "window_start_s": pl.Series(start[used], dtype=pl.Int64), "sum_wpow": total[used]}),
                            w0, r.window[-1])
        client = by.client[by.starts]
        used, total = _power(by.starts, *(p[client] for p in self.client_params), np.log(by.x))
        self.client_power[client] += total
        self.client_rows[client] += used

    def result(self) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
        return self.per_window.result(None), _by_client(self.client_rows, {"sum_wpow": self.client_power})


class CrossRanks:
    """Per client, the sum over rows of the product of centred midranks of each joint pair
    (Spearman's numerator), the midranks from the first pass's value counts."""

    def __init__(self, n_clients: int, category: str, ranks: dict[str, pl.DataFrame]):
        self.k, self.category = n_clients, category
        self.jnames = lengths.joint_fields(category)
        self.pairs = [(a, b) for i, a in enumerate(self.jnames) for b in self.jnames[i + 1:]]
        self.ranks = {n: Midranks(ranks[n], n, n_clients) for n in self.jnames}
        self.cross = {p: np.zeros(n_clients) for p in self.pairs}
        self.rows = np.zeros(n_clients, np.int64)

    def add(self, r: Rows) -> None:
        rows = (lengths.length_fields(r.lazy(client=r.client), self.category, ("client",))
                .filter(_joint(self.jnames)).collect())
        c = rows["client"].to_numpy()
        ranked = {n: self.ranks[n](c, rows[n].to_numpy()) for n in self.jnames}
        self.rows += np.bincount(c, minlength=self.k)
        for a, b in self.pairs:
            self.cross[(a, b)] += np.bincount(c, ranked[a] * ranked[b], self.k)

    def result(self) -> pl.DataFrame | None:
        return _by_client(self.rows, {f"x:{a}:{b}": self.cross[(a, b)] for a, b in self.pairs})


def _by_client(rows: np.ndarray, sums: dict) -> pl.DataFrame | None:
    """(client, sums) of the clients with rows; None when none has."""
    at = np.flatnonzero(rows)
    return pl.DataFrame({"client": pl.Series(at, dtype=pl.Int32), **{k: v[at] for k, v in sums.items()}}) if at.size else None


def _power(starts: np.ndarray, shape: np.ndarray, scale: np.ndarray, log_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per run of rows beginning at `starts`, with its own shape and scale: whether it has rows
    with an inter-arrival and a finite shape, and their sum((x / scale)^shape), as
    exp(shape (log x - log scale)) (one log of x for every run)."""
    counts = np.diff(np.r_[starts, log_x.size])
    k = np.repeat(shape, counts)
    ok = np.isfinite(log_x) & np.isfinite(k)
    with np.errstate(invalid="ignore"):
        term = np.exp(k * (log_x - np.repeat(np.log(scale), counts)))
    return np.add.reduceat(ok, starts) > 0, np.add.reduceat(np.where(ok, term, 0.0), starts)


def _lookup(table: tuple[np.ndarray, ...], keys: np.ndarray) -> tuple[np.ndarray, ...]:
    """The columns of `table` (sorted keys first) at `keys`, NaN where a key is absent."""
    at = np.minimum(np.searchsorted(table[0], keys), max(table[0].size - 1, 0))
    found = table[0][at] == keys if table[0].size else np.zeros(keys.size, bool)
    return tuple(np.where(found, col[at], np.nan) if col.size else np.full(keys.size, np.nan) for col in table[1:])


def _merge_sum_of(*cols: str) -> Callable[[list[pl.DataFrame], list[str]], pl.DataFrame]:
    def merge(parts: list[pl.DataFrame], keys: list[str]) -> pl.DataFrame:
        return pl.concat(parts).group_by(keys).agg(pl.col(c).sum() for c in cols)
    return merge


def spearman(ranks: dict[str, pl.DataFrame], cross: pl.DataFrame | None, jnames: tuple[str, ...]) -> pl.DataFrame:
    """Per client: Spearman of each joint pair (`rho:a:b`, NaN for a constant field) and the
    Gaussian copula correlation reproducing it (`corr:a:b`)."""
    spread = None
    for n in jnames:
        s = ranks[n].group_by("client").agg((pl.col("n") * pl.col(f"_r:{n}") ** 2).sum().alias(f"ss:{n}"))
        spread = s if spread is None else spread.join(s, on="client", how="inner")
    if cross is None or spread is None:
        return pl.DataFrame(schema={"client": pl.Int32})
    out = cross.join(spread, on="client", how="inner")
    pairs = [(a, b) for i, a in enumerate(jnames) for b in jnames[i + 1:]]
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = {f"rho:{a}:{b}": out[f"x:{a}:{b}"].to_numpy() / np.sqrt(out[f"ss:{a}"].to_numpy() * out[f"ss:{b}"].to_numpy())
               for a, b in pairs}
    return pl.DataFrame({"client": out["client"], **rho,
                         **{f"corr:{a}:{b}": lengths.spearman_to_normal(rho[f"rho:{a}:{b}"]) for a, b in pairs}})
