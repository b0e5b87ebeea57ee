"""The bundle fit's second pass: the sums that need the first pass's results, over the same
batches of rows (Weibull likelihood sums with the moment-matched parameters; Spearman numerators
with the midranks of the first pass's value counts), and Spearman's rho from them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from servetrace.arrays import Scratch
from servetrace.bundle import lengths
from servetrace.bundle.sums import Accumulator, Gaps, Grid, Rows, joint
from servetrace.rows.moments import starts_of


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
        self.scratch = Scratch()  # work arrays reused batch after batch

    def add(self, r: Rows) -> None:
        work, n = self.scratch, r.t.size
        by = self.gaps(r.client, r.t, r.window)
        w0, nw = r.window[0], int(r.window[-1] - r.window[0]) + 1
        key = work("key", n, np.int64)
        key[...] = by.client
        key *= nw
        key += by.take(r.window, work("window", n, r.window.dtype))
        key -= w0  # client x nw + (window - w0)
        starts = starts_of(key)
        client, start = key[starts] // nw, (w0 + key[starts] % nw) * self.grid.window_s + self.grid.g0
        used, total = _power(starts, *_lookup(self.window_params, start * self.k + client),
                             np.log(by.x_window, out=work("log_x", n)), work)
        self.per_window.add(pl.DataFrame({"client": pl.Series(client[used], dtype=pl.Int32),
                                          "window_start_s": pl.Series(start[used], dtype=pl.Int64), "sum_wpow": total[used]}),
                            w0, r.window[-1])
        client = by.client[by.starts]
        used, total = _power(by.starts, *(p[client] for p in self.client_params), np.log(by.x, out=work("log_x", n)), work)
        self.client_power[client] += total
        self.client_rows[client] += used

    def result(self) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
        self.scratch.clear()
        self.gaps.scratch.clear()
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
                .filter(joint(self.jnames)).collect())
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


def _power(starts: np.ndarray, shape: np.ndarray, scale: np.ndarray, log_x: np.ndarray,
           work: Scratch) -> tuple[np.ndarray, np.ndarray]:
    """Per run of rows beginning at `starts`, with its own shape and scale: whether it has rows
    with an inter-arrival and a finite shape, and their sum((x / scale)^shape), as
    exp(shape (log x - log scale)) (one log of x for every run); `work`: the caller's work arrays."""
    n = log_x.size
    counts = np.diff(np.r_[starts, n])
    k, term = _each_run(shape, starts, counts, work("power.k", n)), _each_run(np.log(scale), starts, counts, work("power.term", n))
    ok = np.isfinite(log_x, out=work("power.ok", n, bool))
    ok &= np.isfinite(k, out=work("power.flag", n, bool))
    with np.errstate(invalid="ignore"):
        np.subtract(log_x, term, out=term)
        np.multiply(k, term, out=term)
        np.exp(term, out=term)
    np.copyto(term, 0.0, where=np.logical_not(ok, out=work("power.flag", n, bool)))
    return np.add.reduceat(ok, starts) > 0, np.add.reduceat(term, starts)


def _each_run(values: np.ndarray, starts: np.ndarray, counts: np.ndarray, out: np.ndarray) -> np.ndarray:
    """np.repeat(values, counts) in `out` (the runs beginning at `starts`)."""
    if starts.size <= 1024:
        for lo, c, v in zip(starts.tolist(), counts.tolist(), values):
            out[lo: lo + c] = v
    else:
        out[...] = np.repeat(values, counts)
    return out


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
