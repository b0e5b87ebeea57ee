"""Inter-arrival fits when timestamps are rounded to a grid (resolution `delta`).

Rounding both ends of a gap x to the grid (with a uniform phase) shows the gap as k * delta with
probability P_k = integral f(x) tri(x / delta - k) dx, tri the unit triangle: gaps shorter than the
resolution are not lost but seen as ties (k = 0, a censored observation), and short gaps are smeared
over neighbouring multiples. With G(t) = integral_0^t F = t F(t) - M1(t), M1(t) = integral_0^t x f,
the observed CDF is H(k) = (G((k+1) delta) - G(k delta)) / delta and P_k = H(k) - H(k - 1). For
k >= `exact_below` (settings: stages.rounded_exact_below), P_k = delta f(k delta) to a relative O(1/k^2): the likelihood there is the density
of the observed gap, summed from sufficient statistics. The parameters maximize this likelihood
(Nelder-Mead on log parameters, from the closed-form fit of the positive gaps).
"""

from __future__ import annotations

import math

import numpy as np
import scipy  # scipy.special loads on first use (scipy's lazy submodules)

from servetrace.settings import DEFAULTS
from servetrace.stats import families


def partial_mean(family: str, p: dict, t: np.ndarray) -> np.ndarray:
    """M1(t) = integral_0^t x f(x) dx of a fitted family (scalar params, t >= 0)."""
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if family == "exponential":
            return p["scale"] * scipy.special.gammainc(2.0, t / p["scale"])
        if family == "gamma":
            return p["shape"] * p["scale"] * scipy.special.gammainc(p["shape"] + 1, t / p["scale"])
        if family == "weibull":
            c, lam = p["shape"], p["scale"]
            return lam * np.exp(scipy.special.gammaln(1 + 1 / c)) * scipy.special.gammainc(1 + 1 / c, (t / lam) ** c)
        if family == "lognormal":
            mu, s = p["mu"], p["sigma"]
            return math.exp(mu + s * s / 2) * scipy.special.ndtr((np.log(t) - mu - s * s) / s)
    raise ValueError(f"unknown family {family}")


def _cdf(family: str, p: dict, t: np.ndarray) -> np.ndarray:
    return families.iat_cdf(family, p, np.asarray(t, dtype=float)[None, :])[0]


def observed_cdf(family: str, p: dict, k: np.ndarray, delta: float, exact_below: int = DEFAULTS.stages.rounded_exact_below) -> np.ndarray:
    """H(k): the probability that a gap is seen as at most k grid steps (k >= -1 integers); exact
    below `exact_below` steps, the density's CDF at the step's middle above."""
    k = np.asarray(k, dtype=float)
    steps = np.arange(0, exact_below + 1) * delta  # G at 0 .. exact_below steps, once
    g = np.where(steps > 0, steps * _cdf(family, p, steps) - partial_mean(family, p, steps), 0.0)
    exact = np.concatenate([[0.0], np.diff(g) / delta])  # H(-1) = 0, H(0) .. H(exact_below - 1)
    small = k < exact_below
    out = np.empty(k.shape)
    out[small] = exact[np.clip(k[small], -1, None).astype(np.int64) + 1]
    out[~small] = _cdf(family, p, (k[~small] + 0.5) * delta)
    return out


def observed_cdf_exact(family: str, p: dict, k: np.ndarray, delta: float) -> np.ndarray:
    """H(k) exactly at every k >= -1 (integers): (G((k+1) delta) - G(k delta)) / delta, with no
    midpoint approximation above `exact_below` (the KS distance compares it with the data)."""
    k = np.asarray(k, dtype=float)
    steps, where = np.unique(np.clip(np.concatenate([k, k + 1]), 0, None), return_inverse=True)
    t = steps * delta
    g = np.where(t > 0, t * _cdf(family, p, t) - partial_mean(family, p, t), 0.0)
    lo, hi = g[where[: k.size]], g[where[k.size:]]
    return np.where(k >= 0, (hi - lo) / delta, 0.0).reshape(k.shape)


class Rounded:
    """Sufficient statistics of gaps seen on a grid of `delta` seconds (exact probabilities for
    gaps of fewer than `exact_below` steps)."""

    def __init__(self, x: np.ndarray, delta: float, exact_below: int = DEFAULTS.stages.rounded_exact_below):
        x = np.sort(np.asarray(x, dtype=float))
        self.x, self.delta, self.exact_below = x, delta, exact_below
        self.k = np.rint(x / delta)
        small = self.k < exact_below
        self.small_counts = np.bincount(self.k[small].astype(np.int64), minlength=exact_below)
        big = x[~small]
        self.n_big = big.size
        self.log_big = np.log(big)
        self.sum_log, self.sum_log2, self.sum_x = self.log_big.sum(), (self.log_big**2).sum(), big.sum()
        # the distinct grid steps seen (k is sorted) and each gap's among them: the observed CDF is
        # evaluated once a step, not once a gap
        new_step = np.concatenate([[True], self.k[1:] != self.k[:-1]]) if self.k.size else np.zeros(0, dtype=bool)
        self.steps = self.k[new_step]
        self.step_of = np.cumsum(new_step) - 1
        self.levels = int(self.steps.size)

    def loglik(self, family: str, p: dict) -> float:
        h = observed_cdf(family, p, np.arange(-1, self.exact_below), self.delta, self.exact_below)
        pk = np.diff(h)
        used = self.small_counts > 0
        small = float((self.small_counts[used] * np.log(np.maximum(pk[used], 1e-300))).sum())
        n, sl = self.n_big, self.sum_log
        if family == "exponential":
            dens = -n * math.log(p["scale"]) - self.sum_x / p["scale"]
        elif family == "gamma":
            a, th = p["shape"], p["scale"]
            dens = (a - 1) * sl - self.sum_x / th - n * (a * math.log(th) + scipy.special.gammaln(a))
        elif family == "weibull":
            c, lam = p["shape"], p["scale"]
            dens = (n * (math.log(c) - c * math.log(lam)) + (c - 1) * sl
                    - float(np.exp(c * (self.log_big - math.log(lam))).sum()))
        else:
            mu, s = p["mu"], p["sigma"]
            dens = (-sl - n * math.log(s) - n / 2 * math.log(2 * math.pi)
                    - (self.sum_log2 - 2 * mu * sl + n * mu * mu) / (2 * s * s))
        return small + dens + n * math.log(self.delta)

    def untestable(self, family: str) -> str | None:
        """Why the KS distance cannot test `family` on these gaps, or None when it can. The gaps as
        seen take `levels` distinct grid values: their ECDF has levels - 1 free steps, and a family
        of as many parameters (or more) matches them whatever the gaps' shape (a 1 s clock at 100
        req/s shows gaps of 0 and 1 s only: any one-parameter fit matches the tie share, KS ~1e-9)."""
        n_params = families.N_PARAMS[family]
        if self.levels - 1 > n_params:
            return None
        ties = float(np.count_nonzero(self.k == 0)) / max(self.x.size, 1)
        return (f"the {self.delta:g} s grid shows the gaps as only {self.levels} distinct value{'s' if self.levels != 1 else ''} ({ties:.1%} ties), "
                f"which a {n_params}-parameter family matches whatever the gaps' shape")

    def ks(self, family: str, p: dict) -> float:
        """KS distance between the gaps as seen and the family seen through the same grid (the
        exact observed CDF at every step); NaN when the gaps cannot test the family (`untestable`)."""
        if self.untestable(family):
            return math.nan
        hi = observed_cdf_exact(family, p, self.steps, self.delta)[self.step_of]
        lo = observed_cdf_exact(family, p, self.steps - 1, self.delta)[self.step_of]
        return float(families.ks_distance(self.x[None, :], (hi[None, :], lo[None, :]))[0])


NAMES = {"exponential": ("scale",), "gamma": ("shape", "scale"), "weibull": ("shape", "scale"),
         "lognormal": ("mu", "sigma")}


def _fit_one(r: Rounded, family: str, start: dict) -> dict:
    names = NAMES[family]
    logged = [n != "mu" for n in names]  # positive parameters are searched on the log scale

    def params(v: np.ndarray) -> dict:
        return {n: float(math.exp(x) if lg else x) for n, x, lg in zip(names, v, logged)}

    def nll(v: np.ndarray) -> float:
        if np.any(np.abs(np.asarray(v)[logged]) > 50):
            return math.inf
        try:
            ll = r.loglik(family, params(v))
        except (OverflowError, ZeroDivisionError, ValueError):  # the search strayed where a moment overflows
            return math.inf
        return -ll if np.isfinite(ll) else math.inf

    from scipy import optimize  # ~1 s to import; only traces on a coarse clock come here

    v0 = np.array([math.log(start[n]) if lg else start[n] for n, lg in zip(names, logged)])
    res = optimize.minimize(nll, v0, method="Nelder-Mead",
                            options={"xatol": 1e-6, "fatol": 1e-6, "maxiter": 2000})
    p = params(res.x)
    fit = {"params": {k: np.array([v]) for k, v in p.items()}, "loglik": np.array([-res.fun]),
           "ks": np.array([r.ks(family, p)])}
    reason = r.untestable(family)
    return {**fit, "ks_absent": reason} if reason else fit


def fit_rounded(x: np.ndarray, delta: float, exact_below: int = DEFAULTS.stages.rounded_exact_below) -> dict[str, dict]:
    """The four inter-arrival families fitted to gaps x (>= 0, ties included) seen on a grid of
    `delta` seconds; the same structure as families.fit_iat_rows (one row), AIC and BIC included."""
    r = Rounded(x, delta, exact_below)
    pos = r.x[r.x > 0]
    start = families.fit_iat_rows(pos[None, :]) if pos.size >= 2 else None
    fits = {}
    for family in families.IAT_FAMILIES:
        s = {k: float(v[0]) for k, v in start[family]["params"].items()} if start else {}
        if not s or not all(np.isfinite(v) and (v > 0 or k == "mu") for k, v in s.items()):
            continue  # degenerate positive gaps (all equal): no start for this family
        fit = _fit_one(r, family, s)
        n = len(r.x)
        fit["aic"] = 2 * families.N_PARAMS[family] - 2 * fit["loglik"]
        fit["bic"] = families.N_PARAMS[family] * math.log(n) - 2 * fit["loglik"]
        fits[family] = fit
    return fits


def resolution_of(x: np.ndarray, grid_s: float | None) -> float | None:
    """The grid gaps are seen on: the timestamp grid when one was detected, else (when some gaps
    are ties) the smallest positive gap, else None (no rounding visible: fit the density)."""
    if grid_s:
        return float(grid_s)
    x = np.asarray(x, dtype=float)
    pos = x[x > 0]
    return float(pos.min()) if pos.size and (x == 0).any() else None
