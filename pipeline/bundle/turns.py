"""The bundle's turns-per-session PMF, fitted for the sessions the trace's span end cuts.

A session still open at the span end shows fewer turns than it has: its count is right-censored.
Which sessions are open is not seen, only how likely it is: a session whose last turn came
`left` seconds before the end, with k turns so far, goes on with probability
c_k S(left) / (c_k S(left) + 1 - c_k), where c_k = P(turns > k | turns >= k) and S is the
survival of the gap between turns (the next turn would have fallen past the end). An EM over the
discrete hazards: each session counts as censored at k with that weight and as ended at k with
the rest, the Kaplan-Meier estimator (statsmodels' SurvfuncRight, weights by turn count) gives
new hazards, until they settle. Mass the estimator leaves above the longest session (all of its
sessions open) stays at that count (Efron's convention). Without censoring (no span end or no
gaps) the PMF is the observed one.
"""

from __future__ import annotations

import numpy as np

MAX_ROUNDS = 200
TOLERANCE = 1e-7  # largest change of a hazard between rounds
GAP_CLASS_MIN = 20  # gaps a class of turns needs for its own gap survival


def _gap_survival(turns: np.ndarray, left_s: np.ndarray, gaps: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per session, the chance its next gap is longer than `left_s`, from the gaps that followed
    turns of its last turn's class (1, 2-3, 4-7, ... by `after`, the turn each gap followed; a
    class of fewer than GAP_CLASS_MIN gaps merges into the one below): sessions speed up as they
    go on (Mooncake: median gap 141 s after turn 1, 5 s after turn 16), and the pooled gaps would
    hold a long session's last turn open long after it ended."""
    ok = np.isfinite(gaps)
    gaps, after = gaps[ok], after[ok]
    cls = np.floor(np.log2(np.maximum(after, 1))).astype(np.int64)
    own = np.floor(np.log2(np.maximum(turns, 1))).astype(np.int64)
    out = np.empty(len(turns))
    for c, reads in gap_ranges(np.bincount(cls, minlength=own.max() + 1), np.unique(own)).items():  # a dozen classes at most
        g = np.sort(gaps[(cls >= reads[0]) & (cls <= reads[1])]) if reads else np.sort(gaps)
        at = own == c
        out[at] = 1 - np.searchsorted(g, left_s[at], side="right") / len(g)
    return out


def gap_ranges(counts: np.ndarray, classes) -> dict[int, tuple[int, int] | None]:
    """Per class of turns c (of `classes`), the classes [lo, c] of the turn a gap follows whose gaps
    give its gap survival (`counts`: gaps per class): down from c until GAP_CLASS_MIN gaps; None
    where none of [0, c] has a gap (all the gaps)."""
    out = {}
    for c in (int(c) for c in classes):
        lo = c
        while lo > 0 and counts[lo:c + 1].sum() < GAP_CLASS_MIN:
            lo -= 1
        out[c] = (lo, c) if counts[lo:c + 1].sum() else None
    return out


def _km(values: np.ndarray, ended: np.ndarray, open_: np.ndarray) -> np.ndarray:
    """P(turns > k) at each k of `values` by Kaplan-Meier, from the weights of sessions ended and
    still open at each k."""
    from statsmodels.duration.survfunc import SurvfuncRight

    keep = np.r_[ended, open_] > 0
    time = np.r_[values, values].astype(float)[keep]
    status = np.r_[np.ones(len(values)), np.zeros(len(values))][keep]
    sf = SurvfuncRight(time, status, freq_weights=np.r_[ended, open_][keep])
    at = np.searchsorted(sf.surv_times, values, side="right") - 1
    return np.where(at >= 0, sf.surv_prob[np.maximum(at, 0)], 1.0)


def censored_pmf(turns: np.ndarray, left_s: np.ndarray, gaps: np.ndarray,
                 after: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(values, probs, expected number of sessions open at the span end): the PMF of turns per
    session, given each session's observed turns and the seconds `left_s` from its last turn to
    the span end, with `gaps` the gaps between turns and `after` the turn each followed."""
    if not np.isfinite(gaps).any():
        values, counts = np.unique(turns, return_counts=True)
        return values, counts / counts.sum(), 0.0
    s_left = _gap_survival(turns, np.asarray(left_s, dtype=float), np.asarray(gaps, dtype=float), np.asarray(after))
    return censored_counts(turns, s_left, np.ones(len(turns)))


def censored_counts(turns: np.ndarray, s_left: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """`censored_pmf` from each (group of) session's turns, chance `s_left` that its next gap would
    fall past the span end, and `weight` (its sessions: 1 each, or the counts of equal (turns,
    s_left) pairs that bundle/session_stats.py gets from SQL)."""
    values, index = np.unique(turns, return_inverse=True)
    k_n = len(values)
    ended = np.bincount(index, weights=weight, minlength=k_n)
    surv = _km(values, ended, np.zeros(k_n))
    w = np.zeros(len(turns))
    for _ in range(MAX_ROUNDS):  # EM rounds (a handful to a few dozen)
        before = np.r_[1.0, surv[:-1]]
        c = np.where(before > 0, surv / np.where(before > 0, before, 1), 0.0)[index]  # P(goes on | reached k)
        w = c * s_left / np.maximum(c * s_left + 1 - c, 1e-300)
        new = _km(values, np.bincount(index, weights=weight * (1 - w), minlength=k_n),
                  np.bincount(index, weights=weight * w, minlength=k_n))
        done = np.abs(new - surv).max() < TOLERANCE
        surv = new
        if done:
            break
    pmf = np.r_[1.0, surv[:-1]] - surv
    pmf[-1] += surv[-1]  # left above the longest session: at its count
    return values, pmf / pmf.sum(), float((weight * w).sum())


def turns_model(turns: np.ndarray, left_s: np.ndarray | None = None, gaps: np.ndarray | None = None,
                after: np.ndarray | None = None) -> dict:
    """The bundle's `turns`: `values`, `probs` (`censored_pmf`; the observed PMF without `left_s`),
    `observed_mean` (turns per session as the trace shows them), `open_at_end` (sessions
    expected still open at the span end) and `fit` (geometric p = 1 / mean with its KS)."""
    if left_s is None or gaps is None:
        values, counts = np.unique(turns, return_counts=True)
        probs, open_ = counts / counts.sum(), 0.0
    else:
        values, probs, open_ = censored_pmf(turns, left_s, gaps, after)
    return turns_fit(values, probs, open_, float(turns.mean()))


def turns_fit(values: np.ndarray, probs: np.ndarray, open_: float, observed_mean: float) -> dict:
    """`turns_model`'s dict from the PMF, with the geometric fit."""
    p = 1 / float(np.dot(values, probs))
    from scipy import stats

    ks = float(np.abs(np.cumsum(probs) - stats.geom(p).cdf(values)).max())
    return {"values": values.tolist(), "probs": probs.tolist(), "observed_mean": observed_mean,
            "open_at_end": open_, "fit": {"family": "geometric", "params": {"p": p}, "ks": ks}}
