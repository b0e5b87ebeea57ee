"""Counts, means and squared deviations merged batch by batch (Chan et al.: the parts' squared
deviations plus n_i (mean_i - mean)^2): the same numbers as two passes over all values, to rounding.

`Moments`: running numpy arrays for a fixed set of groups (the stages' gap statistics).
`segment_sums` / `merge_sums`: per-batch sums of groups whose keys ascend, merged as frames (the
bundle fit's per client and window sums, which also carry log sums and failures)."""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.arrays import Scratch


def starts_of(key: np.ndarray) -> np.ndarray:
    """Where each run of equal keys begins."""
    return np.r_[0, np.flatnonzero(key[1:] != key[:-1]) + 1] if key.size else np.zeros(0, np.int64)


class Moments:
    """Per group: count, mean and sum of squared deviations, merged batch by batch. `scratch`: the
    consumer's work arrays (pipeline/arrays.py), for the squared deviations."""

    def __init__(self, n_groups: int, scratch: Scratch | None = None) -> None:
        self.n = np.zeros(n_groups, np.int64)
        self.mean = np.zeros(n_groups)
        self.m2 = np.zeros(n_groups)
        self.scratch = scratch

    def _work(self, name: str, n: int, dtype=np.float64) -> np.ndarray:
        return self.scratch(f"moments.{name}", n, dtype) if self.scratch is not None else np.empty(n, dtype)

    def add(self, x: np.ndarray, group: np.ndarray | None = None) -> None:
        if len(x) == 0:
            return
        k = len(self.n)
        with np.errstate(invalid="ignore", divide="ignore"):
            if group is None:  # one group: no per-row group index to scatter through
                n = np.array([len(x)])
                mean = np.array([x.mean()])
                dev = np.subtract(x, mean[0], out=self._work("dev", len(x)))
                m2 = np.array([np.dot(dev, dev)])
            else:
                steps = self._work("steps", len(x) - 1, bool)
                if not np.less(group[1:], group[:-1], out=steps).any():  # sorted groups: sums over contiguous runs
                    change = self._work("change", len(x), bool)
                    change[0] = True
                    np.not_equal(group[1:], group[:-1], out=change[1:])
                    starts = np.flatnonzero(change)
                    self.add_runs(x, starts, np.diff(np.append(starts, len(x))), group[starts])
                    return
                n = np.bincount(group, minlength=k)
                mean = np.bincount(group, weights=x, minlength=k) / n
                dev = np.take(mean, group, out=self._work("dev", len(x)), mode="clip")
                np.subtract(x, dev, out=dev)
                np.square(dev, out=dev)
                m2 = np.bincount(group, weights=dev, minlength=k)
            self._merge(n, mean, m2)

    def add_runs(self, x: np.ndarray, starts: np.ndarray, counts: np.ndarray, at: np.ndarray) -> None:
        """Values in runs of one group each: run i begins at starts[i], has counts[i] values and is
        group at[i] (each group one run at most)."""
        if len(x) == 0:
            return
        k = len(self.n)
        with np.errstate(invalid="ignore", divide="ignore"):
            seg_mean = np.add.reduceat(x, starts) / counts
            dev = self._work("dev", len(x))
            if len(starts) <= 64:  # each run less its mean, no per-row copy of the means
                for lo, c, m in zip(starts.tolist(), counts.tolist(), seg_mean):
                    np.subtract(x[lo: lo + c], m, out=dev[lo: lo + c])
            else:
                np.subtract(x, np.repeat(seg_mean, counts), out=dev)
            np.square(dev, out=dev)
            n, mean, m2 = np.zeros(k, np.int64), np.zeros(k), np.zeros(k)
            n[at], mean[at], m2[at] = counts, seg_mean, np.add.reduceat(dev, starts)
            self._merge(n, mean, m2)

    def _merge(self, n: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):
            has = n > 0
            total = self.n + n
            delta = np.where(has, mean - self.mean, 0.0)
            share = np.where(has, n / np.maximum(total, 1), 0.0)
            self.m2 = self.m2 + np.where(has, m2, 0.0) + delta * delta * self.n * share
            self.mean = self.mean + delta * share
        self.n = total

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(count, mean, population std) per group; NaN for a group without values."""
        with np.errstate(invalid="ignore", divide="ignore"):
            empty = self.n == 0
            return self.n, np.where(empty, np.nan, self.mean), np.where(empty, np.nan, np.sqrt(self.m2 / self.n))


def cv(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean != 0, std / mean, np.nan)


SUMS = ("requests", "n_iat", "sum_x", "sum_log", "m2", "failed", "sum_tick_n2")


def _masked(x: np.ndarray, ok: np.ndarray, fill: float, out: np.ndarray) -> np.ndarray:
    """np.where(ok, x, fill) in `out`."""
    out.fill(fill)
    np.copyto(out, x, where=ok)
    return out


def _zero_where_not(ok: np.ndarray, x: np.ndarray, flag: np.ndarray) -> np.ndarray:
    """np.where(ok, x, 0.0), in x (`flag`: a boolean work array)."""
    np.copyto(x, 0.0, where=np.logical_not(ok, out=flag))
    return x


def segment_sums(key: np.ndarray, x: np.ndarray, failed: np.ndarray,
                 scratch: Scratch | None = None) -> tuple[np.ndarray, dict]:
    """(the distinct keys, their sums) of rows whose keys ascend: requests, inter-arrival count,
    sum, sum of logs, squared deviations from the group's mean (m2) and failures, of
    inter-arrivals `x` (NaN: none, a client's first row). `scratch`: the caller's work arrays."""
    work = scratch if scratch is not None else lambda name, n, dtype=np.float64: np.empty(n, dtype)
    starts = starts_of(key)
    requests = np.diff(np.r_[starts, key.size])
    ok = np.isfinite(x, out=work("segment.ok", x.size, bool))
    every = bool(ok.all())
    n = requests if every else np.add.reduceat(ok, starts, dtype=np.int64)
    sum_x = np.add.reduceat(x if every else _masked(x, ok, 0.0, work("segment.x", x.size)), starts)
    mean = sum_x / np.maximum(n, 1)
    dev = work("segment.dev", x.size)
    if starts.size <= 1024:  # each run less its mean, no per-row copy of the means
        for lo, c, m in zip(starts.tolist(), requests.tolist(), mean):
            np.subtract(x[lo: lo + c], m, out=dev[lo: lo + c])
    else:
        np.subtract(x, np.repeat(mean, requests), out=dev)
    np.square(dev, out=dev)
    logs = np.log(x if every else _masked(x, ok, 1.0, work("segment.x", x.size)), out=work("segment.x", x.size))
    sums = {"requests": requests, "n_iat": n, "sum_x": sum_x,
            "sum_log": np.add.reduceat(logs, starts),
            "m2": np.add.reduceat(dev if every else _zero_where_not(ok, dev, work("segment.nok", x.size, bool)), starts),
            "failed": np.add.reduceat(failed, starts, dtype=np.int64),
            "sum_tick_n2": np.zeros(starts.size)}  # bundle/sums.py TickSquares, on a coarse clock
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


