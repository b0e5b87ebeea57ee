"""The bundle fit's sums, accumulated over batches of rows in arrival order.

Memory is bounded by clients x windows x distinct values, never by rows: each batch is reduced to
per-group sums (counts, inter-arrival moments, value counts) and the partial sums are merged.
Inter-arrivals carry each client's last arrival from one batch to the next. Variances merge
exactly (Chan et al.: the sum of the parts' squared deviations plus n_i (mean_i - mean)^2)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.bundle import arrivals, lengths
from pipeline.bundle.model import CATEGORY_FIELDS
from pipeline.errors import ServetraceError

BATCH_ROWS = 1 << 20
COMPACT_EVERY = 16  # partial sums merged every this many batches

# columns -> a fresh iterator over the table's rows in batches, in file order
Batches = Callable[[list[str]], Iterator[pl.DataFrame]]


def frame_batches(frame: pl.DataFrame, rows: int | None = None) -> Batches:
    def read(cols: list[str]) -> Iterator[pl.DataFrame]:
        n = rows or BATCH_ROWS
        for lo in range(0, frame.height, n):
            yield frame.slice(lo, n).select(cols)
    return read


def file_batches(path: Path, rows: int | None = None) -> Batches:
    def read(cols: list[str]) -> Iterator[pl.DataFrame]:
        import pyarrow.parquet as pq

        try:
            # pre_buffer=False: pre-buffered column ranges stay cached for the file's lifetime, which
            # made memory grow by ~4 MB a batch (read back over 100 M rows: 0.64 GB against 0.23 GB)
            for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=rows or BATCH_ROWS, columns=cols):
                yield pl.from_arrow(batch)
        except (OSError, ValueError) as exc:  # pyarrow's read errors (ArrowInvalid is a ValueError)
            raise ServetraceError(f"{path}: not a readable Parquet table ({str(exc).splitlines()[0]})") from None
    return read


class Unsorted(Exception):
    """The table is not sorted by arrival_s (streamed inter-arrivals need arrival order)."""


# ---------------------------------------------------------------- grouping and the client of each row

def present(batches: Batches, col: str) -> bool:
    return any(b[col].null_count() < b.height for b in batches([col]))


def varies(batches: Batches, col: str) -> bool:
    """More than one distinct value (null counts as one), stopping at the second."""
    seen = None
    for b in batches([col]):
        seen = b[col].unique() if seen is None else pl.concat([seen, b[col].unique()]).unique()
        if seen.len() > 1:
            return True
    return False


def key_expr(cols: list[str]) -> pl.Expr:
    """A client's name from its grouping columns (nulls as "(none)", joined by "|")."""
    if not cols:
        return pl.lit("all")
    parts = [pl.col(c).cast(pl.String).fill_null("(none)") for c in cols]
    return parts[0] if len(parts) == 1 else pl.concat_str(parts, separator="|")


def _merge_counts(parts: list[pl.DataFrame], keys: list[str], n: str = "n") -> pl.DataFrame:
    return pl.concat(parts).group_by(keys).agg(pl.col(n).sum())


class Survey:
    """One pass over arrivals, grouping columns and category markers: rows, covered span, whether
    rows are in arrival order, how many rows each grouping combination has, and the category."""

    def __init__(self, batches: Batches, cols: list[str], columns: list[str]):
        markers = [c for c in ("reason_tokens", "image_count") if c in columns]
        self.rows, self.t0, self.t1 = 0, np.inf, -np.inf
        self.positive = dict.fromkeys(markers, False)
        parts: list[pl.DataFrame] = []
        for b in batches(["arrival_s", *cols, *markers]):
            t = b["arrival_s"]
            if t.null_count():
                raise ServetraceError("requests: arrival_s has nulls (every request needs an arrival time)")
            if b.height == 0:
                continue
            first, last = float(t[0]), float(t[-1])
            if first < self.t1 or not t.is_sorted():
                raise Unsorted()
            self.rows += b.height
            self.t0, self.t1 = min(self.t0, first), last
            for c in markers:
                self.positive[c] |= bool(b.select((pl.col(c).fill_null(0) > 0).any()).item())
            if cols:
                parts.append(b.group_by(cols).len("n"))
                if len(parts) >= COMPACT_EVERY:
                    parts = [_merge_counts(parts, cols)]
        self.combos = _merge_counts(parts, cols) if parts else None

    def category(self) -> str:
        if self.positive.get("reason_tokens"):
            return "reason"
        return "multimodal" if self.positive.get("image_count") else "language"


class Clients:
    """The client of each row as an integer: the index of its name among the sorted names, the
    smallest clients beyond `max_clients` merged into `other`."""

    def __init__(self, cols: list[str], combos: pl.DataFrame | None, max_clients: int, other: str):
        self.cols = cols
        self.key = key_expr(cols)
        if not cols:
            self.names, self.lookup = ["all"], None
            return
        counts = (combos.select(self.key.alias("client"), "n").group_by("client").agg(pl.col("n").sum())
                  .sort(["n", "client"], descending=[True, False]))
        names = counts["client"].to_list()
        merged = [c if i < max_clients - 1 or len(names) <= max_clients else other for i, c in enumerate(names)]
        self.names = sorted(set(merged))
        index = {c: i for i, c in enumerate(self.names)}
        self.lookup = (pl.Series(names, dtype=pl.String), pl.Series([index[m] for m in merged], dtype=pl.Int32))

    def of(self, batch: pl.DataFrame) -> np.ndarray:
        if self.lookup is None:
            return np.zeros(batch.height, np.int32)
        old, new = self.lookup
        return batch.select(self.key.replace_strict(old, new, return_dtype=pl.Int32)).to_series().to_numpy()


class Gaps:
    """Each row's time since the same client's previous arrival (NaN for a client's first row),
    floored at IAT_FLOOR_S, with each client's last arrival carried to the next batch."""

    def __init__(self, n_clients: int):
        self.last = np.full(n_clients, np.nan)

    def __call__(self, client: np.ndarray, t: np.ndarray) -> np.ndarray:
        if t.size == 0:
            return t.astype(float)
        order = None if self.last.size == 1 else np.argsort(client, kind="stable")
        c, s = (client, t) if order is None else (client[order], t[order])
        start = np.ones(c.size, bool)
        start[1:] = c[1:] != c[:-1]
        prev = np.empty_like(s)
        prev[1:] = s[:-1]
        prev[start] = self.last[c[start]]
        end = np.r_[np.flatnonzero(start)[1:] - 1, c.size - 1]
        self.last[c[end]] = s[end]
        gap = np.maximum(s - prev, arrivals.IAT_FLOOR_S)
        if order is None:
            return gap
        out = np.empty_like(gap)
        out[order] = gap
        return out


# ---------------------------------------------------------------- partial sums and their merge

SUMS = ("requests", "n_iat", "sum_x", "sum_log", "m2", "failed")


def batch_sums(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Per group of `keys`: requests, inter-arrival count, sum, sum of logs, squared deviations
    from the group's mean (m2) and failures, of a frame with keys, `x` (null: none) and `failed`."""
    x = pl.col("x")
    return frame.group_by(keys).agg(
        pl.len().cast(pl.Int64).alias("requests"), x.count().cast(pl.Int64).alias("n_iat"),
        x.sum().alias("sum_x"), x.log().sum().alias("sum_log"),
        ((x - x.mean()) ** 2).sum().alias("m2"), pl.col("failed").sum().cast(pl.Int64).alias("failed"))


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
    """Partial sums per group, merged every COMPACT_EVERY batches."""

    def __init__(self, keys: list[str], merge: Callable[[list[pl.DataFrame], list[str]], pl.DataFrame]):
        self.keys, self.merge, self.parts = keys, merge, []

    def add(self, part: pl.DataFrame) -> None:
        self.parts.append(part)
        if len(self.parts) >= COMPACT_EVERY:
            self.parts = [self.merge(self.parts, self.keys)]

    def result(self, empty: pl.DataFrame) -> pl.DataFrame:
        return self.merge(self.parts, self.keys) if self.parts else empty


# ---------------------------------------------------------------- the passes

class Grid:
    """Window and dataset-window starts of arrivals, the expressions the fit has always used."""

    def __init__(self, g0: int, window_s: int, dataset_window_s: int):
        a = pl.col("arrival_s")
        self.window = (((a - g0) // window_s).cast(pl.Int64) * window_s + g0).alias("window_start_s")
        self.dataset = (((a - g0) // dataset_window_s).cast(pl.Int64) * dataset_window_s + g0).alias("dataset_start_s")


class ArrivalSums:
    """Per (client, window) and per window of all rows: the inter-arrival sums and failures; the
    first `ks_sample` inter-arrivals of each client; whether a failure ever keeps an output."""

    def __init__(self, n_clients: int, grid: Grid, ks_sample: int):
        self.grid, self.gaps, self.all_gaps = grid, Gaps(n_clients), Gaps(1)
        self.per_window = Accumulator(["client", "window_start_s"], merge_sums)
        self.overall = Accumulator(["window_start_s"], merge_sums)
        self.heads: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        self.need = np.full(n_clients, ks_sample, np.int64)
        self.nonzero = False

    def add(self, b: pl.DataFrame, c: np.ndarray) -> None:
        t = b["arrival_s"].to_numpy()
        failed = b["failed"].fill_null(False)
        self.nonzero |= bool(((b["output_tokens"].fill_null(0) != 0) & failed).any())
        ws = b.select(self.grid.window).to_series()
        x = self.gaps(c, t)
        frame = pl.DataFrame({"client": c, "window_start_s": ws, "x": pl.Series(x, nan_to_null=True), "failed": failed})
        self.per_window.add(batch_sums(frame, ["client", "window_start_s"]))
        everyone = pl.Series(self.all_gaps(np.zeros(t.size, np.int32), t), nan_to_null=True)
        self.overall.add(batch_sums(pl.DataFrame({"window_start_s": ws, "x": everyone, "failed": failed}), ["window_start_s"]))
        if self.need.any():
            _take_heads(c, x, self.need, self.heads)

    def result(self) -> dict:
        empty = pl.DataFrame(schema={"client": pl.Int32, "window_start_s": pl.Int64,
                                     **{k: pl.Float64 if k.startswith(("sum", "m2")) else pl.Int64 for k in SUMS}})
        return {"per_window": self.per_window.result(empty), "overall": self.overall.result(empty.drop("client")),
                "ks": {i: np.concatenate(h) for i, h in enumerate(self.heads) if h}, "nonzero": self.nonzero}


def _take_heads(c: np.ndarray, x: np.ndarray, need: np.ndarray, heads: list[list[np.ndarray]]) -> None:
    """Appends to each client's sample its next inter-arrivals in arrival order, up to `need`."""
    ok = np.isfinite(x) & (need[c] > 0)
    c, x = c[ok], x[ok]
    order = np.argsort(c, kind="stable")
    c, x = c[order], x[order]
    start = np.searchsorted(c, c, side="left")
    rank = np.arange(c.size) - start
    keep = rank < need[c]
    c, x = c[keep], x[keep]
    for i in np.unique(c):  # one slice per client of the batch
        lo, hi = np.searchsorted(c, [i, i + 1])
        heads[i].append(x[lo:hi])
        need[i] -= hi - lo


class LengthCounts:
    """Per field: how often each value occurs per (client, dataset window, whether the row has
    every joint field), over requests that did not fail."""

    def __init__(self, grid: Grid, category: str):
        self.grid, self.category = grid, category
        self.names, self.jnames = CATEGORY_FIELDS[category], lengths.joint_fields(category)
        self.acc = {n: Accumulator(["client", "dataset_start_s", n, "_joint"], _merge_counts) for n in self.names}

    def add(self, b: pl.DataFrame, c: np.ndarray) -> None:
        fields = _fields(b, c, self.grid, self.category, self.jnames)
        for n in self.names:
            self.acc[n].add(fields.group_by("client", "dataset_start_s", n, "_joint").agg(pl.len().cast(pl.Int64).alias("n")))

    def result(self) -> dict[str, pl.DataFrame]:
        return {n: self.acc[n].result(None) for n in self.names}


def _fields(b: pl.DataFrame, c: np.ndarray, grid: Grid, category: str, jnames: tuple[str, ...]) -> pl.DataFrame:
    b = b.with_columns(pl.Series("client", c), grid.dataset)
    fields = lengths.length_fields(b, category)
    return fields.with_columns(pl.all_horizontal([pl.col(j).is_not_null() for j in jnames]).alias("_joint"))


def midranks(counts: pl.DataFrame, name: str) -> pl.DataFrame:
    """(client, value, centred midrank): the average rank of each value among the client's rows
    (ties share their mean rank, as Spearman's rho ranks them) minus the mean rank (n + 1) / 2."""
    m = counts.filter("_joint").group_by("client", name).agg(pl.col("n").sum()).sort("client", name)
    cum = pl.col("n").cum_sum().over("client")
    total = pl.col("n").sum().over("client")
    return m.select("client", name, "n", (cum - (pl.col("n") - 1) / 2 - (total + 1) / 2).alias(f"_r:{name}"))


class SecondPass:
    """The Weibull log-likelihood's sum((iat / scale)^shape) per (client, window) and per client
    (the parameters, w_shape and w_scale, come from the first pass), and per client the sum over
    rows of the product of centred midranks of each joint pair (Spearman's numerator)."""

    def __init__(self, n_clients: int, grid: Grid, category: str, per_window: pl.DataFrame,
                 per_client: pl.DataFrame, ranks: dict[str, pl.DataFrame]):
        self.grid, self.category, self.ranks = grid, category, ranks
        self.jnames = lengths.joint_fields(category)
        self.pairs = [(a, b) for i, a in enumerate(self.jnames) for b in self.jnames[i + 1:]]
        self.gaps = Gaps(n_clients)
        self.params = [(per_window.select("client", "window_start_s", "w_shape", "w_scale"), ["client", "window_start_s"]),
                       (per_client.select("client", "w_shape", "w_scale"), ["client"])]
        self.power = [Accumulator(keys, _merge_sum_of("sum_wpow")) for _, keys in self.params]
        self.cross = Accumulator(["client"], _merge_sum_of(*[f"x:{a}:{b}" for a, b in self.pairs]))

    def add(self, b: pl.DataFrame, c: np.ndarray) -> None:
        x = self.gaps(c, b["arrival_s"].to_numpy())
        frame = pl.DataFrame({"client": c, "window_start_s": b.select(self.grid.window).to_series(),
                              "x": pl.Series(x, nan_to_null=True)}).drop_nulls("x")
        for acc, (params, keys) in zip(self.power, self.params):
            p = frame.join(params, on=keys, how="inner").filter(pl.col("w_shape").is_finite())
            acc.add(p.group_by(keys).agg(((pl.col("x") / pl.col("w_scale")) ** pl.col("w_shape")).sum().alias("sum_wpow")))
        rows = _fields(b, c, self.grid, self.category, self.jnames).filter("_joint").select("client", *self.jnames)
        for n in self.jnames:
            rows = rows.join(self.ranks[n].select("client", n, f"_r:{n}"), on=["client", n], how="left")
        self.cross.add(rows.group_by("client").agg(
            [(pl.col(f"_r:{a}") * pl.col(f"_r:{b}")).sum().alias(f"x:{a}:{b}") for a, b in self.pairs]))

    def result(self) -> tuple[pl.DataFrame | None, pl.DataFrame | None, pl.DataFrame | None]:
        return self.power[0].result(None), self.power[1].result(None), self.cross.result(None)


def run(batches: Batches, cols: list[str], clients: Clients, *consumers) -> None:
    """One pass over the table: each batch's client indices computed once, fed to every consumer."""
    for b in batches(cols):
        if "failed" not in b.columns:
            b = b.with_columns(pl.lit(False).alias("failed"))
        c = clients.of(b)
        for consumer in consumers:
            consumer.add(b, c)


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
