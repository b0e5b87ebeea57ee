"""Arrival times: per client a renewal process with per-window rate and inter-arrival family,
carried across window edges, drawn with no loop per request, one block of segments at a time.

A client's process runs in operational time u (the integral of its rate): there the
inter-arrival times have mean 1 and the window's family shape (Gamma or Weibull). Window by
window, each client's next arrival is where the previous window's last gap lands, so counts per
window vary as the process says (no rescaling to fill a window) and a window of rate 0 pauses
the process. Each (client, segment) cell draws a pool of gaps ahead of time, generously sized
(mean + 6 sd + slack), so that the only loop is over segments, vectorized across clients.
Blocks (generate/plan.py) bound the memory: a client's draws come from its own stream per
block, and where each client's process stands is carried from one block to the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gamma as gamma_fn

from servetrace.generation.options import Timeline

GAMMA, WEIBULL = 0, 1


@dataclass(frozen=True)
class WindowParams:
    """Dense (clients x bundle windows) parameters of the selected clients."""

    rate: np.ndarray
    family: np.ndarray  # GAMMA | WEIBULL
    shape: np.ndarray


def window_params(bundle: dict, chosen: list[int]) -> WindowParams:
    grid = np.asarray(bundle["aggregate"]["window_start_s"], dtype=float)
    shape_ = (len(chosen), len(grid))
    rate, family, shape = np.zeros(shape_), np.zeros(shape_, dtype=np.int8), np.ones(shape_)
    for row, ci in enumerate(chosen):  # one pass per client, not per request
        c = bundle["clients"][ci]
        w = c["windows"]
        if not w["start_s"]:
            continue
        col = np.searchsorted(grid, np.asarray(w["start_s"], dtype=float))
        rate[row, col] = np.asarray(w["rate_rps"], dtype=float)
        fam = np.array([f or "" for f in w["family"]])
        sh = np.array([np.nan if s is None else s for s in w["shape"]], dtype=float)
        known = (fam != "") & (sh > 0)
        fallback_fam, fallback_shape = sparse_window_process(fam[known], sh[known])
        family[row, col] = np.where(known, np.where(fam == "weibull", WEIBULL, GAMMA), fallback_fam)
        shape[row, col] = np.where(known, sh, fallback_shape)
    return WindowParams(rate, family, shape)


def shrunk(p: WindowParams, covered_s: np.ndarray, clump: np.ndarray | float = 1.0) -> WindowParams:
    """Each client's active window rates drawn toward their mean by sqrt(1 - noise / var): a
    fitted rate is the window's count over its `covered_s` seconds, whose variance across
    windows holds the count noise of the source's process (cv^2 r / covered per window) on top of
    the rates' own; the generator adds that noise once more, so unshrunk a steady client's window
    counts vary twice as much as the source's (IDC at the window scale doubled). Shrunk, the
    generated counts' variance equals the source's in expectation; inactive windows stay at 0, and
    the centre is the mean weighted by covered seconds, so the expected count keeps. `clump`
    (per client, generation/clumping.py): for session traces, the rate is the starts' times
    their turns, and a session's turns in one window add to the noise: (cv^2 - 1 + K) r / covered
    (cv^2 for K = 1, one request a session; K for Poisson starts)."""
    rate = p.rate.copy()
    cover = np.maximum(np.asarray(covered_s, dtype=float), 1e-9)
    k = np.broadcast_to(np.asarray(clump, dtype=float), (p.rate.shape[0],))[:, None]
    noise = (unit_cv(p.family, p.shape) ** 2 - 1 + k) * p.rate / cover[None, :]
    for row in np.flatnonzero((p.rate > 0).sum(axis=1) >= 2):  # a loop over clients
        on = p.rate[row] > 0
        r = p.rate[row, on]
        var = r.var(ddof=1)
        if var > 0:
            f = np.sqrt(max(0.0, 1.0 - noise[row, on].mean() / var))
            centre = np.average(r, weights=cover[on])
            rate[row, on] = centre + f * (r - centre)
    return WindowParams(rate, p.family, p.shape)


def sparse_window_process(families: np.ndarray, shapes: np.ndarray) -> tuple[int, float]:
    """(family, shape) for a client's windows with too few arrivals to fit: its most common fitted
    window family with the median shape, or Poisson when none was fitted. Not the whole-span
    fit: its CV mixes the rate changes between windows into the gaps (BurstGPT_1's head: CV 4.2
    over the span, about 1 inside windows), which would clump a sparse window's few arrivals."""
    if len(families) == 0:
        return GAMMA, 1.0
    weibull = families == "weibull"
    use_weibull = weibull.sum() > (~weibull).sum()
    return (WEIBULL if use_weibull else GAMMA), float(np.median(shapes[weibull if use_weibull else ~weibull]))


def unit_cv(family: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Inter-arrival CV of the family with this shape (scale-free)."""
    with np.errstate(over="ignore", invalid="ignore"):
        weib = np.sqrt(np.maximum(gamma_fn(1 + 2 / shape) / gamma_fn(1 + 1 / shape) ** 2 - 1, 0))
    return np.where(family == WEIBULL, weib, 1 / np.sqrt(shape))


def unit_gaps(rng: np.random.Generator, family: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Mean-1 inter-arrival times, one per element of `family` / `shape`."""
    out = np.empty(len(shape))
    g = family == GAMMA
    out[g] = rng.gamma(shape[g], 1 / shape[g])
    w = ~g
    out[w] = rng.weibull(shape[w]) / gamma_fn(1 + 1 / shape[w])
    return out


CELL_DRAWS = 256  # cells of a client this long on average draw by cell (one call per cell, no per-draw parameters)


def unit_gaps_into(rng: np.random.Generator, family: np.ndarray, shape: np.ndarray, size: np.ndarray,
                   out: np.ndarray) -> None:
    """`unit_gaps` of cells of `size` draws each of one family and shape, written into `out`: the same
    draws in the same order (every Gamma draw in cell order, then every Weibull one), so the same
    numbers bit for bit; long cells are drawn a cell at a time with their parameters as scalars
    (Gamma of shape 1 by the exponential sampler directly), short ones as `unit_gaps` does."""
    if len(size) == 0 or out.size < CELL_DRAWS * len(size) or not (np.isfinite(shape).all() and (shape > 0).all()):
        out[:] = unit_gaps(rng, np.repeat(family, size), np.repeat(shape, size))
        return
    start = np.r_[0, np.cumsum(size)[:-1]]
    for c in np.flatnonzero(family == GAMMA):
        part, k = out[start[c]:start[c] + size[c]], shape[c]
        rng.standard_gamma(k, size=part.size, out=part)  # gamma(k, 1 / k) is 1 / k x standard_gamma(k)
        np.multiply(part, 1 / k, out=part)
    for c in np.flatnonzero(family != GAMMA):
        k = shape[c]
        np.divide(rng.weibull(k, size=int(size[c])), gamma_fn(1 + 1 / k), out=out[start[c]:start[c] + size[c]])


@dataclass(frozen=True)
class Arrivals:
    client: np.ndarray  # row in the selected clients
    arrival_s: np.ndarray
    window: np.ndarray  # bundle window index
    pool_exhausted: int


ARRIVAL_STREAM = 0  # client_seed purpose: 0 arrivals, 1 lengths, 2 failures


def client_seed(seed: int, client_index: int, stream: int, block: int = 0) -> np.random.Generator:
    """An independent stream per (seed, client position in the bundle, purpose, block)."""
    return np.random.default_rng(np.random.SeedSequence([seed, client_index, stream, block]))


class ArrivalProcess:
    """Each selected client's renewal process, advanced block by block (segments in time order).

    `carry` is, per client, the operational time from the start of its next active segment to its
    next arrival; a client's first active block draws it from the stationary start."""

    def __init__(self, p: WindowParams, chosen: list[int], seed: int):
        self.p, self.chosen, self.seed = p, chosen, seed
        self.carry = np.zeros(len(chosen))
        self.started = np.zeros(len(chosen), dtype=bool)

    def block(self, tl: Timeline, block: int) -> Arrivals:
        """Arrivals in a block's segments `tl` (the next ones in time), client-major, ascending per client."""
        p, chosen = self.p, self.chosen
        win, fac, begin, end = tl.window, tl.factor, tl.begin_s, tl.end_s
        lo, hi = 0, len(win)
        seg_rate = p.rate[:, win] * fac[None, :]  # clients x segments of the block
        cl, sg = np.nonzero(seg_rate > 0)  # cells, client-major, segments ascending
        if len(cl) == 0:
            e = np.empty(0)
            return Arrivals(e.astype(np.int64), e, e.astype(np.int64), 0)
        rate = seg_rate[cl, sg]
        length = rate * (end[sg] - begin[sg])  # expected arrivals = operational length
        fam, shape = p.family[cl, win[sg]], p.shape[cl, win[sg]]
        cv = unit_cv(fam, shape)
        size = pool_sizes(length, cv)
        start = np.r_[0, np.cumsum(size)[:-1]]
        gaps, carry = np.empty(int(size.sum())), self.carry
        pos = np.empty_like(gaps)
        first_cell = np.r_[0, np.flatnonzero(np.diff(cl)) + 1]
        pool_end = np.empty(len(first_cell))
        for k, row in enumerate(np.unique(cl)):  # one draw per client keeps a client's stream its own
            rng = client_seed(self.seed, chosen[row], ARRIVAL_STREAM, block)
            lo_c = first_cell[k]
            hi_c = first_cell[k + 1] if k + 1 < len(first_cell) else len(cl)
            a, b = start[lo_c], start[hi_c - 1] + size[hi_c - 1]
            unit_gaps_into(rng, fam[lo_c:hi_c], shape[lo_c:hi_c], size[lo_c:hi_c], gaps[a:b])
            # the client's own running sum: its times do not depend on the clients drawn before it
            np.cumsum(gaps[a:b], out=pos[a:b])
            pool_end[k] = pos[b - 1]
            pos[a:b] -= gaps[a:b]
            if not self.started[row]:
                # stationary start: a uniform point inside a length-biased gap (Gamma with shape + 1, same CV)
                s0 = 1 / cv[lo_c] ** 2
                carry[row] = rng.uniform() * rng.gamma(s0 + 1, 1 / s0)
                self.started[row] = True
        # The clients' sums laid end to end: increasing, so one searchsorted finds the cut in any cell.
        pool_rows = np.diff(np.r_[start[first_cell], len(gaps)])
        key = pos + np.repeat(np.cumsum(pool_end) - pool_end, pool_rows)
        base = pos[start]  # operational position of each cell's origin in its client's running sum
        key_base = key[start]
        offset, kept = np.zeros(len(cl)), np.zeros(len(cl), dtype=np.int64)
        exhausted = 0
        by_segment = np.argsort(sg, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(sg, minlength=hi - lo))]
        for j in range(hi - lo):  # a loop over segments, vectorized across clients
            q = by_segment[bounds[j]:bounds[j + 1]]
            if len(q) == 0:
                continue
            c = carry[cl[q]]
            room = length[q] - c
            n = np.clip(np.searchsorted(key, key_base[q] + room, side="left") - start[q], 0, size[q])
            last = start[q] + np.maximum(n - 1, 0)
            crossing = pos[last] + gaps[last] - base[q]  # where the gap after the last kept point lands
            nxt = np.where(n > 0, c + crossing - length[q], c - length[q])
            full = nxt < 0  # the pool ran out before the segment's end: leave its tail empty, restart
            exhausted += int(full.sum())
            carry[cl[q]] = np.where(full, 0.0, nxt)
            offset[q], kept[q] = c, n
        total = int(kept.sum())
        first_kept = np.cumsum(kept) - kept
        idx = np.arange(total) + np.repeat(start - first_kept, kept)
        # each kept point's cell values repeated run by run (not gathered point by point):
        # begin + (offset + pos - base) / rate, the same operations in the same order
        t = np.repeat(offset, kept)
        t += pos[idx]
        t -= np.repeat(base, kept)
        t /= np.repeat(rate, kept)
        t += np.repeat(begin[sg], kept)
        return Arrivals(np.repeat(cl.astype(np.int64), kept), t, np.repeat(win[sg].astype(np.int64), kept), exhausted)


def pool_sizes(length: np.ndarray, cv: np.ndarray) -> np.ndarray:
    """Gaps drawn ahead for a cell of `length` expected arrivals: mean + 6 sd + slack."""
    return np.ceil(length + 6 * cv * np.sqrt(length) + 6 * cv**2 + 8).astype(np.int64)


def arrivals(p: WindowParams, tl: Timeline, chosen: list[int], seed: int) -> Arrivals:
    """Every arrival of a timeline as one block, in memory (the session layer's path)."""
    return ArrivalProcess(p, chosen, seed).block(tl, 0)
