"""Gaps between consecutive arrivals, fed by the one row stream in file order (pipeline/rows/).

requests.parquet is sorted by arrival, so file order is (arrival_s, row_id) order: the gaps of the
whole trace are differences of the arrival column, with no sort. The rows stream from DuckDB in
batches; every statistic is merged batch by batch (pipeline/rows/moments.py), so memory is one
batch plus the group codes (2 bytes a row, pipeline/rows/codes.py), whatever the trace length:
- whole trace and per window: count, mean and squared deviations merged exactly (Chan et al.);
- per group (client, model, service): one stable sort of the batch by the group's code, and the
  last arrival of each group carried to the next batch;
- de-rounded arrivals (each moved by a seeded uniform within the timestamp grid, `jitter_s`):
  rows wait until no later row can sort before them (a later row's de-rounded time is at least
  the batch's last raw arrival), then are sorted and differenced;
- duplicate rows: equal rows share an arrival, so hashes are compared within a batch, holding
  back the batch's last tie block;
- the longest gaps and the seeded fit samples keep only their candidates (the whole-trace sample:
  raw gaps, ties included, for the rounding-aware fit; per window: positive de-rounded gaps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from servetrace.arrays import Scratch, numpy_of
from servetrace.errors import ServetraceError
from servetrace.grouping import Grouping
from servetrace.rows.codes import Codes, combined, load_codes
from servetrace.rows.moments import Moments, cv
from servetrace.rows.uniforms import seeded_uniform

# Per row, from stg_requests in file order: row number, arrival, row hash. The seeded uniforms
# (stg_requests' u, u_jitter) are computed from the row numbers (rows/uniforms.py).
ROW_SELECT = "row_id, arrival_s, row_hash"


def _nulls(frame: pl.DataFrame) -> pl.DataFrame:
    """NaN (an empty or undefined statistic) as null, as the SQL aggregates give it."""
    return frame.with_columns(pl.col(pl.Float64).fill_nan(None))


@dataclass(frozen=True)
class GapResults:
    summary: dict  # whole trace: gaps, positive, mean, std, cv (raw), cv de-rounded, max gap, ties
    longest: pl.DataFrame  # the top_gaps longest gaps
    window_gaps: pl.DataFrame  # per window: within-window gaps, mean, CV raw and de-rounded
    group_gaps: pl.DataFrame  # per group (all groups): requests and own-gap mean and CV
    model_gaps: pl.DataFrame
    service_gaps: pl.DataFrame
    iat_sample: np.ndarray  # raw gaps (ties included) with u < sample_p
    window_sample: pl.DataFrame  # per window, the per_window_n positive de-rounded gaps of smallest u


class LevelGaps:
    """Gaps between a level's own consecutive arrivals (client, model, service), batch by batch."""

    def __init__(self, codes: Codes, scratch: Scratch | None = None) -> None:
        self.codes = codes
        self.last = np.full(len(codes.levels), np.nan)  # last arrival of each level so far
        self.scratch = scratch or Scratch()
        self.moments = Moments(len(codes.levels), self.scratch)

    def add(self, t: np.ndarray, start: int) -> None:
        codes = self.codes.codes[start: start + len(t)]
        k, n = len(self.codes.levels), len(t)
        counts = np.bincount(codes, minlength=k) if k > 1 else np.array([n])
        # rows by level, arrival order kept within a level; the sorted codes are each level repeated
        ts = np.take(t, np.argsort(codes, kind="stable"), out=self.scratch("level.t", n), mode="clip") if k > 1 else t
        present = np.flatnonzero(counts)
        ends = np.cumsum(counts)[present]  # each present level's rows: ends - counts .. ends - 1
        firsts = ends - counts[present]
        gap = self.scratch("level.gap", n)
        np.subtract(ts[1:], ts[:-1], out=gap[1:])
        gap[firsts] = ts[firsts] - self.last[present]  # NaN for a level's first arrival
        if np.isnan(gap[firsts]).any():
            c = np.repeat(np.arange(k, dtype=np.int64), counts) if k > 1 else np.zeros(n, np.int64)
            ok = ~np.isnan(gap)
            self.moments.add(gap[ok], c[ok])
        else:  # each present level's rows are one run of the sorted rows
            self.moments.add_runs(gap, firsts, counts[present], present)
        self.last[present] = ts[ends - 1]

    def frame(self) -> pl.DataFrame:
        n, mean, std = self.moments.result()
        return _nulls(pl.DataFrame({"level": self.codes.levels, "requests": self.codes.counts, "gaps": n,
                                    "iat_mean_s": mean, "iat_cv": cv(mean, std)}))


class GapStream:
    """Every gap statistic of the trace, fed batches of rows in file (= arrival) order."""

    def __init__(self, codings: dict[str, Codes], t0_s: float, n_windows: int, window_s: float, jitter_s: float,
                 sample_p: float, per_window_n: int, top_gaps: int, seed: int) -> None:
        self.t0_s, self.window_s, self.jitter_s, self.seed = t0_s, window_s, jitter_s, seed
        self.sample_p, self.per_window_n, self.top_gaps = sample_p, per_window_n, top_gaps
        self.scratch = Scratch()  # work arrays reused batch after batch (pipeline/arrays.py)
        self.levels = {name: LevelGaps(c, self.scratch) for name, c in codings.items()}
        self.raw, self.derounded = Moments(1, self.scratch), Moments(1, self.scratch)
        self.window_raw, self.window_derounded = Moments(n_windows, self.scratch), Moments(n_windows, self.scratch)
        self.n_windows = n_windows
        self.zero = self.positive = 0
        self.max_gap = -np.inf
        self.prev_t = self.prev_w = None  # last row of the previous batch (raw order)
        self.prev_td = self.prev_wd = None  # last row placed in de-rounded order
        self.pending = (np.zeros(0), np.zeros(0, np.int64), np.zeros(0))  # de-rounded rows not yet placed
        self.longest = np.zeros((0, 3))  # candidates: gap, arrival of the later row, row
        self.samples: list[np.ndarray] = []
        self.final_samples: list[pl.DataFrame] = []
        self.window_sample = pl.DataFrame(schema={"window_idx": pl.Int64, "iat_s": pl.Float64, "u": pl.Float64})
        self.tie_hashes = np.zeros(0, np.uint64)  # the last tie block of rows, held back
        self.tie_t = None  # its arrival
        self.duplicates = 0
        self.start = 0

    def window(self, t: np.ndarray, work: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """Each arrival's window, as stg_requests computes it (`work`, `out`: arrays to compute it in)."""
        x = np.subtract(t, self.t0_s, out=work)
        np.divide(x, self.window_s, out=x)
        np.floor(x, out=x)
        if out is None:
            return x.astype(np.int64)
        out[...] = x
        return out

    def add(self, r) -> None:
        """A batch of the row stream (pipeline/rows/stream.py): arrivals and the ROW_SELECT columns. The
        uniforms and de-rounded arrivals are stg_requests' (`u`; arrival_s + jitter_s x u_jitter)."""
        s, n = self.scratch, len(r.t)
        rows = numpy_of(r.batch.column("row_id"))
        u = seeded_uniform(rows, self.seed, s("u", n), s)
        td = seeded_uniform(rows, self.seed + 1, s("td", n), s)
        np.multiply(td, self.jitter_s, out=td)
        np.add(r.t, td, out=td)
        self.add_arrays(r.t, td, u, numpy_of(r.batch.column("row_hash")))

    def add_arrays(self, t: np.ndarray, td: np.ndarray, u: np.ndarray, row_hash: np.ndarray) -> None:
        if len(t) == 0:
            return
        s, n = self.scratch, len(t)
        if self.prev_t is not None and t[0] < self.prev_t or np.less(t[1:], t[:-1], out=s("flag", n - 1, bool)).any():
            raise ServetraceError("requests.parquet is not sorted by arrival_s (re-run ingest)")
        w = self.window(t, s("level.t", n), s("window", n, np.int64))  # level.t: free until the levels
        iat = self._raw(t, w)
        sampled = np.less(u[len(u) - len(iat):], self.sample_p, out=s("flag", len(iat), bool))
        self.samples.append(iat[sampled])  # raw gaps, ties included
        for level in self.levels.values():
            level.add(t, self.start)
        self._duplicates(t, row_hash)
        m = len(self.pending[0]) + n
        pending = [np.concatenate([a, b], out=s(f"pending.{i}", m, b.dtype))
                   for i, (a, b) in enumerate(zip(self.pending, (td, w, u)))]
        # a later row's de-rounded time is at least this batch's last arrival: the rows up to it are
        # ready. Sorted by de-rounded time (ties in file order), they come first; those left wait in
        # that order, which is their file order among ties, as the next batch's sort needs
        if np.less(pending[0][1:], pending[0][:-1], out=s("flag", m - 1, bool)).any():
            order = _stable_order(pending[0], s("flag", m, bool))
            pending = [np.take(a, order, out=s(f"sorted.{i}", m, a.dtype), mode="clip") for i, a in enumerate(pending)]
        k = int(np.searchsorted(pending[0], t[-1], side="right"))
        self.pending = tuple(a[k:].copy() for a in pending)
        self._derounded(*(a[:k] for a in pending))
        self.start += n

    def _raw(self, t: np.ndarray, w: np.ndarray) -> np.ndarray:
        s, n = self.scratch, len(t) + (self.prev_t is not None)
        # in the de-rounded gaps' work arrays, which are free until then
        tt = t if self.prev_t is None else np.concatenate([[self.prev_t], t], out=s("derounded.t", n))
        ww = w if self.prev_w is None else np.concatenate([[self.prev_w], w], out=s("derounded.w", n, np.int64))
        iat = np.subtract(tt[1:], tt[:-1], out=s("derounded.gap", n - 1))
        self.raw.add(iat)
        flag = s("flag", n - 1, bool)
        self.zero += int(np.count_nonzero(np.equal(iat, 0, out=flag)))
        self.positive += int(np.count_nonzero(np.greater(iat, 0, out=flag)))
        if len(iat):
            self.max_gap = max(self.max_gap, float(iat.max()))
        same = np.equal(ww[1:], ww[:-1], out=flag)
        self.window_raw.add(iat[same], ww[1:][same])
        self._keep_longest(iat, tt[1:], self.start + len(t) - len(iat))  # the row of each gap's later request
        self.prev_t, self.prev_w = float(t[-1]), int(w[-1])
        return iat

    def _keep_longest(self, gap: np.ndarray, arrival: np.ndarray, first_row: int) -> None:
        """Keep the top_gaps longest gaps so far (ties: the earliest rows, which come first); the
        gaps' later rows are first_row, first_row + 1, ..."""
        row = None
        if len(self.longest) == self.top_gaps:  # a later row must be strictly longer to enter
            keep = np.flatnonzero(np.greater(gap, self.longest[-1, 0], out=self.scratch("flag", len(gap), bool)))
            gap, arrival, row = gap[keep], arrival[keep], keep + first_row
        pick = _top(gap, self.top_gaps)
        row = pick + first_row if row is None else row[pick]
        cand = np.concatenate([self.longest, np.column_stack([gap[pick], arrival[pick], row])])
        self.longest = cand[np.lexsort((cand[:, 2], -cand[:, 0]))][:self.top_gaps]

    def _duplicates(self, t: np.ndarray, row_hash: np.ndarray) -> None:
        s, k = self.scratch, len(self.tie_hashes)
        h = np.concatenate([self.tie_hashes, row_hash], out=s("hashes", k + len(t), np.uint64))
        tail = len(t) - int(np.searchsorted(t, t[-1], side="left"))  # rows tied with the last arrival
        held = tail + (k if tail == len(t) and self.tie_t == t[-1] else 0)
        d = len(h) - held
        # row_hash covers arrival_s: only a row that shares its arrival with a neighbour (t is
        # sorted) can repeat another, and only those hashes are sorted (37 % of a ms-clock trace's)
        at = s("hashes.t", k + len(t))
        at[:k], at[k:] = self.tie_t if k else 0.0, t
        tied = s("hashes.tied", d, bool)
        if d:
            tied[-1] = False
            np.equal(at[1:d], at[:d - 1], out=tied[:-1])
            tied[1:] |= tied[:-1].copy()  # a row tied with the one before it, or with the one after
        self.duplicates += self._repeats(h[:d], tied, at[:d])
        self.tie_hashes, self.tie_t = h[d:].copy(), float(t[-1])

    def _repeats(self, h: np.ndarray, tied: np.ndarray, at: np.ndarray | None = None) -> int:
        """Hashes (of the `tied` rows) equal to an earlier one (len - distinct), in a work array.

        `at`: the rows' arrivals, in order. A repeat shares its row's arrival (row_hash covers it),
        so the hashes are sorted by a key of (the arrival's block among the rows, the hash's high
        bits): the keys come sorted block by block, which a stable sort (timsort) merges ~2x faster
        than it sorts the hashes whole. Where an equal key holds unequal hashes (high bits shared
        within one arrival) the hashes are sorted whole instead: the count is the same."""
        m = int(np.count_nonzero(tied))
        if m < 2:
            return 0
        s = self.scratch
        x = np.compress(tied, h, out=s("hashes.sorted", m, h.dtype))
        # the levels' work arrays, free once they are done with the batch (no memory of its own)
        key, work = s("level.t", m).view(np.uint64), s("level.gap", m).view(np.uint64)
        blocks = 0
        if at is not None:  # each row's arrival block: the count of arrival changes before it
            a = np.compress(tied, at, out=work.view(np.float64))
            key[0] = 0
            np.not_equal(a[1:], a[:-1], out=key[1:], casting="unsafe")
            np.cumsum(key, out=key)
            blocks = int(key[-1])
        if blocks:
            bits = blocks.bit_length()
            np.left_shift(key, np.uint64(64 - bits), out=key)
            key |= np.right_shift(x, np.uint64(bits), out=work)
            order = np.argsort(key, kind="stable")
            ks = np.take(key, order, out=work)
            same_key = np.equal(ks[1:], ks[:-1], out=s("hashes.same_key", m - 1, bool))
            hs = np.take(x, order, out=key)
            same_hash = np.equal(hs[1:], hs[:-1], out=s("hashes.same", m - 1, bool))
            if np.array_equal(same_key, same_hash):
                return int(np.count_nonzero(same_key))
        x.sort()
        return int(np.count_nonzero(np.equal(x[1:], x[:-1], out=s("flag", m - 1, bool))))

    def _derounded(self, td: np.ndarray, w: np.ndarray, u: np.ndarray) -> None:
        if len(td) == 0:
            return
        s, n = self.scratch, len(td)
        if np.less(td[1:], td[:-1], out=s("flag", n - 1, bool)).any():  # already in order when nothing was de-rounded
            order = _stable_order(td, s("flag", n, bool))  # ties keep file order, as row_id would
            td, w, u = (np.take(a, order, out=s(f"sorted.{i}", n, a.dtype), mode="clip") for i, a in enumerate((td, w, u)))
        n += self.prev_td is not None
        tt = td if self.prev_td is None else np.concatenate([[self.prev_td], td], out=s("derounded.t", n))
        ww = w if self.prev_wd is None else np.concatenate([[self.prev_wd], w], out=s("derounded.w", n, np.int64))
        gap = np.subtract(tt[1:], tt[:-1], out=s("derounded.gap", n - 1))
        later_w, later_u = ww[1:], u[len(u) - len(gap):]
        self.derounded.add(gap)
        same = np.equal(ww[1:], ww[:-1], out=s("derounded.same", n - 1, bool))
        self.window_derounded.add(gap[same], later_w[same])
        keep = np.greater(gap, 0, out=s("derounded.keep", n - 1, bool))
        keep &= same
        batch = _window_sample(later_w, gap, later_u, keep, self.per_window_n, s)
        kept = _window_sample_merge(self.window_sample, batch, self.per_window_n)
        # a later row is de-rounded from an arrival at or after td[-1] - jitter: earlier windows are final
        done = pl.col("window_idx") < int(self.window(np.array([td[-1] - self.jitter_s]))[0])
        self.final_samples.append(kept.filter(done))
        self.window_sample = kept.filter(~done)
        self.prev_td, self.prev_wd = float(td[-1]), int(w[-1])

    def finish(self) -> GapResults:
        self._derounded(*self.pending)
        self.duplicates += self._repeats(self.tie_hashes, np.ones(len(self.tie_hashes), bool))  # one arrival
        self.scratch.clear()
        n, mean, std = self.raw.result()
        nd, mean_d, std_d = self.derounded.result()
        gaps = int(n[0])
        summary = {"gaps": gaps, "positive_gaps": self.positive, "zero_gaps": self.zero, "duplicate_rows": self.duplicates}
        if gaps:
            summary.update({"iat_mean_s": float(mean[0]), "iat_std_s": float(std[0]),
                            "iat_cv": float(std[0] / mean[0]) if mean[0] else None,
                            "iat_cv_derounded": float(std_d[0] / mean_d[0]) if mean_d[0] else None,
                            "max_gap_s": self.max_gap, "tie_share": self.zero / gaps})
        else:
            summary.update({k: None for k in ("iat_mean_s", "iat_std_s", "iat_cv", "iat_cv_derounded",
                                              "max_gap_s", "tie_share")})
        gap, arrival = self.longest[:, 0], self.longest[:, 1]
        longest = pl.DataFrame({"gap_start_s": arrival - gap, "gap_s": gap, "gap_windows": gap / self.window_s},
                               schema={c: pl.Float64 for c in ("gap_start_s", "gap_s", "gap_windows")})
        wn, wmean, wstd = self.window_raw.result()
        _, wmean_d, wstd_d = self.window_derounded.result()
        window_gaps = _nulls(pl.DataFrame({"window_idx": np.arange(self.n_windows, dtype=np.int64), "gaps": wn,
                                           "iat_mean_s": wmean, "iat_cv": cv(wmean, wstd),
                                           "iat_cv_derounded": cv(wmean_d, wstd_d)}))
        return GapResults(summary=summary, longest=longest, window_gaps=window_gaps,
                          group_gaps=self.levels["group"].frame(), model_gaps=self.levels["model"].frame(),
                          service_gaps=self.levels["service"].frame(),
                          iat_sample=np.concatenate(self.samples) if self.samples else np.zeros(0),
                          window_sample=pl.concat([*self.final_samples, self.window_sample])
                          .sort("window_idx", "u").drop("u"))


def _stable_order(x: np.ndarray, flag: np.ndarray | None = None) -> np.ndarray:
    """np.argsort(x, kind="stable") of float64 values: sorted as their bits when no value has its sign
    bit set (no negative, -0.0 or NaN of either sign), where the bits order as the values do and
    equal values have equal bits; numpy sorts 64-bit integers faster than doubles. `flag`: a boolean
    work array of x's length."""
    if np.signbit(x, out=flag).any() or np.isnan(x, out=flag).any():
        return np.argsort(x, kind="stable")
    return np.argsort(x.view(np.int64), kind="stable")


def _top(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, ties to the earliest: at most k passes over x (a partition
    degrades when most values tie, as gaps on a 1 s grid do)."""
    threshold, taken = np.inf, 0
    while taken < min(k, len(x)):
        threshold = np.max(x, where=x < threshold, initial=-np.inf)
        taken += int((x == threshold).sum())
    if taken == 0:
        return np.zeros(0, np.int64)
    above = np.flatnonzero(x > threshold)
    return np.concatenate([above, np.flatnonzero(x == threshold)[: k - len(above)]])


def stage_codes(requests_path, rows: int, by: Grouping) -> dict[str, Codes]:
    """The group (pipeline/grouping.py), model and service of every row as codes, in file order."""
    codes = load_codes(requests_path, rows, sorted({"model", "service", *by.columns}))
    return {"group": combined([codes[c] for c in by.columns], rows), "model": codes["model"], "service": codes["service"]}


def _window_sample(w: np.ndarray, iat: np.ndarray, u: np.ndarray, keep: np.ndarray, per_window_n: int,
                   scratch: Scratch | None = None) -> pl.DataFrame:
    """Per window, the `per_window_n` kept gaps with the smallest seeded uniform.

    Sorting every gap by (window, u) is the slow part, so a per-window cut on u first keeps about
    1.5x the gaps needed (u is uniform); a window the cut leaves short keeps all its gaps. The
    rows are compacted once, after the cut (`scratch`: work arrays for the rows' cuts and flags)."""
    s = scratch or Scratch()
    kept = w[keep]
    n = np.bincount(kept, minlength=1) if len(kept) else np.zeros(1, np.int64)
    with np.errstate(divide="ignore"):
        cut = np.minimum(1.0, 1.5 * per_window_n / n + 0.05)
    # a row left out by `keep` may lie past the kept rows' windows: its (clipped) cut is not used
    below = np.less(u, np.take(cut, w, out=s("level.gap", len(w)), mode="clip"), out=s("sample.below", len(w), bool))
    below &= keep
    short = np.bincount(w[below], minlength=len(n)) < np.minimum(n, per_window_n)
    below |= np.logical_and(keep, np.take(short, w, out=s("sample.short", len(w), bool), mode="clip"),
                            out=s("sample.short", len(w), bool))
    w, iat, u = w[below], iat[below], u[below]
    order = np.lexsort((u, w))
    w, iat, u = w[order], iat[order], u[order]
    starts = np.flatnonzero(np.concatenate([[True], w[1:] != w[:-1]])) if len(w) else np.zeros(0, np.int64)
    rank = np.arange(len(w)) - np.repeat(starts, np.diff(np.append(starts, len(w))))
    top = rank < per_window_n
    return pl.DataFrame({"window_idx": w[top].astype(np.int64), "iat_s": iat[top], "u": u[top]},
                        schema={"window_idx": pl.Int64, "iat_s": pl.Float64, "u": pl.Float64})


def _window_sample_merge(kept: pl.DataFrame, batch: pl.DataFrame, per_window_n: int) -> pl.DataFrame:
    """Per window, the per_window_n smallest u of both (a batch touches few windows)."""
    if batch.height == 0:
        return kept
    touched = batch["window_idx"].unique()
    both = pl.concat([kept.filter(pl.col("window_idx").is_in(touched.implode())), batch])
    best = both.sort("window_idx", "u").group_by("window_idx", maintain_order=True).head(per_window_n)
    return pl.concat([kept.filter(~pl.col("window_idx").is_in(touched.implode())), best])
