"""When generated sessions start and how fast they come back, per bin of `sessions.start_share`.

Starts: each bin's rate factor times the share of the source's requests in it that start a
session (`start_timeline`). Returns: a trace seen from a cold start gets more of its follow-ups
as it goes on, and more than its sessions' gaps explain (Mooncake: sessions started in the first
2-minute bin bring 0.07, 0.04, 0.06 requests per session to the next three bins and 0.25 to the
last; the gap model's draw gives a flat 0.11). Drawn on the wall clock, the late bins fell short
(generated requests per 128 s bin 531 to 288 where the source's stay at 458-537); starting more
sessions there instead (rates solved so starts and follow-ups give each bin its requests) fixed
the rate but starts sessions the span cuts after one turn: the infinite-cache hit fell by 0.02.
So the gaps run on a return clock (`return_clock`): per bin a speed, solved so that sessions
started at the source's shares bring each bin the source's follow-ups (its requests minus its
starts); a gap drawn from the session model is operational time, mapped back to seconds
(`on_clock`). The clock comes from a fixed draw of the session model, the same for every
generation seed: generation stays deterministic by seed. Sessions under way at the span start do
not explain those late returns: for any stationary session process the share of requests whose
previous turn came within a lag is the same all through the span, and Mooncake's rises from 0.01
to 0.57 (`sessions.window`, bundle/under_way.py); a stationary model with sessions under way
keeps it flat and misses the cache hit and reuse distances the clock keeps.
"""

from __future__ import annotations

import numpy as np

from servetrace.generation.options import Timeline

CLOCK_SESSIONS = 20_000  # sessions drawn to solve the clock
CLOCK_SEED = 0x5E55_0B1
CLOCK_ROUNDS = 30  # fixed-point rounds (the follow-ups per bin settle to < 1 % in about 10)
SPEED_RANGE = (0.5, 2.0)  # a bin's speed is kept inside this (Mooncake's would run 0.36-1.99)
NOISE_P = 1e-3  # the wall clock is kept unless its follow-ups per bin miss the source's beyond this p


def _within_noise(want: np.ndarray, got: np.ndarray, dispersion: np.ndarray) -> bool:
    """The source's follow-ups per bin (`want`) against the wall clock's expected (`got`):
    Pearson's chi-square over the bins has p >= NOISE_P. A bin's follow-ups come in clumps (a
    session brings m of them), so its variance is got x E[m^2] / E[m] (`dispersion`, compound
    Poisson), not got: the planted paced sessions (4.3 turns 20 s apart) bring 2-3 to a bin."""
    from scipy.stats import chi2

    at = (want + got) > 0
    stat = float(((want - got)[at] ** 2 / (np.maximum(got[at], 1) * dispersion[at])).sum())
    return bool(chi2.sf(stat, max(int(at.sum()), 1)) >= NOISE_P)


def _shares(by: dict) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in by["share"]], dtype=float)


def start_timeline(sess: dict, tl: Timeline) -> Timeline:
    """`tl` cut at the bins of `sessions.start_share` (the share of a bin's requests that start
    a session), each part's rate factor times its bin's share over the whole trace's. Without
    `start_share` (older bundles), `tl` as it is."""
    by = sess.get("start_share")
    base = 1.0 - float(sess["follow_up_share"])
    if not by or base <= 0 or not len(tl.begin_s):
        return tl
    share = _shares(by)
    ratio = np.where(np.isfinite(share), share / base, 1.0)
    edges = by["origin_s"] + by["bin_s"] * np.arange(1, len(ratio))  # inner bin edges
    cuts = [np.unique(np.r_[b, edges[(edges > b) & (edges < e)], e]) for b, e in zip(tl.begin_s, tl.end_s)]
    seg = np.repeat(np.arange(len(cuts)), [len(c) - 1 for c in cuts])
    begin = np.concatenate([c[:-1] for c in cuts])
    end = np.concatenate([c[1:] for c in cuts])
    at = np.clip(np.floor((begin - by["origin_s"]) / by["bin_s"]).astype(np.int64), 0, len(ratio) - 1)
    return Timeline(begin, end, tl.window[seg], tl.factor[seg] * ratio[at])


def on_clock(t: np.ndarray, gap: np.ndarray, clock: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """The seconds a turn arrives at, `gap` operational seconds after `t` on `clock` (bin edges in
    seconds, operational time at them; linear inside a bin, speed 1 outside them); None: t + gap."""
    if clock is None:
        return t + gap
    edges, op = clock
    at = np.interp(t, edges, op) + np.clip(t - edges[-1], 0, None) + np.clip(t - edges[0], None, 0) + gap
    return np.interp(at, op, edges) + np.clip(at - op[-1], 0, None) + np.clip(at - op[0], None, 0)


def _start_cells(bundle: dict, edges: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(begin, end, share of the starts) of the pieces of the bins inside the covered span and
    the bundle's windows: a bin's starts spread over its pieces by their window's rate x length
    (BurstGPT's one bin spans 70 windows, busy at some and idle at others)."""
    grid = np.asarray(bundle["aggregate"]["window_start_s"], dtype=float)
    covered = bundle.get("covered") or {"start_s": edges[0], "end_s": edges[-1]}
    cuts = np.unique(np.r_[edges, grid, grid[-1] + float(bundle["window_s"])])
    cuts = np.unique(np.clip(cuts, covered["start_s"], covered["end_s"]))
    begin, end = cuts[:-1], cuts[1:]
    win = np.clip(np.searchsorted(grid, begin, side="right") - 1, 0, len(grid) - 1)
    b = np.clip(np.searchsorted(edges, begin, side="right") - 1, 0, len(starts) - 1)
    w = np.asarray(bundle["aggregate"]["rate_rps"], dtype=float)[win] * (end - begin)
    in_bin = np.bincount(b, weights=w, minlength=len(starts))
    share = np.where(in_bin[b] > 0, starts[b] * w / np.where(in_bin[b] > 0, in_bin[b], 1), 0.0)
    return begin, end, share / max(share.sum(), 1e-300)


def return_clock(bundle: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(bin edges, operational time at them) of `sessions.start_share`'s bins: per bin a speed,
    solved by fixed-point rounds (speed x wanted / got) so that CLOCK_SESSIONS sessions of the
    trace's session model, started over the bins in the source's starts (share x requests,
    `_start_cells`) and cut at the covered span's end, bring each bin the source's follow-ups
    (requests - starts). None where the wall clock's follow-ups are within noise of those
    (`_within_noise`), without `start_share`'s `requests` (older bundles) or where clients have
    session models of their own (`sessions.clients`: the trace's model is not the one their
    sessions follow; BurstGPT's pooled one, mean 3.6 turns against its clients' 1.6 and 3.3,
    would slow them to 0.76). Loops over rounds and turn numbers."""
    from servetrace.generation.sessions import MAX_TURNS, draw_gaps, first_turns, group_labels

    sess = bundle["sessions"]
    by = sess.get("start_share")
    if not by or not by.get("requests") or not sess.get("gap_s") or sess.get("clients"):
        return None
    r = np.asarray(by["requests"], dtype=float)
    starts = np.nan_to_num(_shares(by)) * r
    if starts.sum() <= 0:
        return None
    n, bin_s = len(r), float(by["bin_s"])
    edges = float(by["origin_s"]) + bin_s * np.arange(n + 1)
    begin, stop, p = _start_cells(bundle, edges, starts)
    end = float(stop[-1])
    rng = np.random.default_rng(np.random.SeedSequence([CLOCK_SEED]))
    cell = group_labels(rng, p, CLOCK_SESSIONS)
    t0 = begin[cell] + rng.random(CLOCK_SESSIONS) * (stop - begin)[cell]
    turns, _, _, bucket = first_turns(rng, sess, 0.0, CLOCK_SESSIONS)
    turns = np.minimum(turns, MAX_TURNS)
    gaps, active = [], np.arange(CLOCK_SESSIONS)
    for k in range(2, int(turns.max(initial=1)) + 1):  # the gaps, drawn once for every round
        active = active[turns[active] >= k]
        gaps.append((active, draw_gaps(rng, sess, None if bucket is None else bucket[active], k, turns[active])))
    want = r - starts
    speed = np.ones(n)
    for round_ in range(CLOCK_ROUNDS):  # fixed-point rounds
        clock = (edges, np.r_[0.0, np.cumsum(speed * bin_s)])
        t = t0.copy()
        got = np.zeros(n)
        hits = []  # (session, bin) of every follow-up inside the span
        for at, g in gaps:  # a loop over turn numbers
            t[at] = on_clock(t[at], g, clock)
            ok = at[t[at] < end]
            b = np.clip(((t[ok] - edges[0]) // bin_s).astype(np.int64), 0, n - 1)
            got += np.bincount(b, minlength=n)
            hits.append(ok * n + b)
        if round_ == 0:
            pairs, m = np.unique(np.concatenate(hits or [np.zeros(0, np.int64)]), return_counts=True)
            m2 = np.bincount(pairs % n, weights=m.astype(float) ** 2, minlength=n)
            dispersion = np.where(got > 0, m2 / np.maximum(got, 1), 1.0)
        got *= starts.sum() / CLOCK_SESSIONS
        if round_ == 0 and _within_noise(want, got, dispersion):
            return None
        speed = np.clip(speed * (want + 1) / (got + 1), *SPEED_RANGE)
    return edges, np.r_[0.0, np.cumsum(speed * bin_s)]
