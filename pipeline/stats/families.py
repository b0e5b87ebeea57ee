"""Maximum-likelihood fits of the inter-arrival and length families, vectorized over rows.

Every fit takes a 2-D array: one sample per row, padded with NaN, so the per-window fits of a
whole trace (thousands of windows) run as a handful of array operations instead of a loop.
Goodness of fit: the Kolmogorov-Smirnov distance, AIC and BIC; the family is chosen by BIC,
preferring the simpler among indistinguishable ones, and a family "fits" when its KS <= `ks_fits`
(the thresholds are settings.StageSettings'; the defaults apply when a caller passes none).
"""

from __future__ import annotations

import math

import functools

import numpy as np
import scipy  # scipy.special loads on first use (scipy's lazy submodules): not at `import servetrace.characterization`

from servetrace.settings import DEFAULTS

from servetrace.stats.names import IAT_FAMILIES, LENGTH_FAMILIES, N_PARAMS, canonical  # noqa: F401

_WEIBULL_K = np.geomspace(0.05, 50.0, 2000)


@functools.cache
def _weibull_cv() -> np.ndarray:
    """The Weibull CV at each shape of _WEIBULL_K."""
    return np.sqrt(np.exp(scipy.special.gammaln(1 + 2 / _WEIBULL_K) - 2 * scipy.special.gammaln(1 + 1 / _WEIBULL_K)) - 1)


def weibull_shape_for_cv(cv: np.ndarray) -> np.ndarray:
    """Weibull shape k whose CV is `cv` (monotone decreasing in k), by interpolation."""
    return np.interp(np.asarray(cv, dtype=float), _weibull_cv()[::-1], _WEIBULL_K[::-1])


def padded(samples: list[np.ndarray]) -> np.ndarray:
    """Rows of unequal length -> one NaN-padded 2-D array."""
    width = max((len(s) for s in samples), default=0)
    out = np.full((len(samples), max(width, 1)), np.nan)
    for i, s in enumerate(samples):  # one iteration per sample (window / group), not per value
        out[i, : len(s)] = s
    return out


def _row_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    valid = np.isfinite(x) & (x > 0)
    n = valid.sum(axis=1)
    xs = np.where(valid, x, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(xs, axis=1) if xs.size else np.full(len(x), np.nan)
        logs = np.log(xs)
        mean_log = np.nanmean(logs, axis=1)
    return xs, n, mean, mean_log


def _gamma_shape(s: np.ndarray) -> np.ndarray:
    """Solve log k - digamma(k) = s (s = log mean - mean log > 0) by Newton from Minka's start."""
    s = np.where(s > 1e-12, s, np.nan)
    k = (3 - s + np.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s)
    for _ in range(8):
        k = k - (np.log(k) - scipy.special.digamma(k) - s) / (1 / k - scipy.special.polygamma(1, k))
        k = np.maximum(k, 1e-6)
    return k


def _weibull_shape(xs: np.ndarray, mean_log: np.ndarray) -> np.ndarray:
    """Solve sum(y^k ln y)/sum(y^k) - 1/k - mean(ln y) = 0 by bisection on log k (monotone in k)."""
    y = xs / np.nanmax(xs, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ln_y = np.log(y)
    target = mean_log - np.log(np.nanmax(xs, axis=1))
    lo = np.full(len(xs), math.log(1e-3))
    hi = np.full(len(xs), math.log(1e3))
    # made once, not per step: padding (NaN) as 0, whose power 0 ** k (k > 0) is the 0 it stood for,
    # and ln y as 0 where it is not finite; every product then finite, so a plain sum is the nansum
    y = np.where(np.isfinite(y), y, 0.0)
    ln_y = np.where(np.isfinite(ln_y), ln_y, 0.0)
    yk, prod = np.empty_like(y), np.empty_like(y)
    for _ in range(50):
        mid = (lo + hi) / 2
        k = np.exp(mid)[:, None]
        np.power(y, k, out=yk)
        with np.errstate(invalid="ignore", divide="ignore"):
            g = np.multiply(yk, ln_y, out=prod).sum(axis=1) / yk.sum(axis=1) - 1 / k[:, 0] - target
        up = g > 0
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
    return np.exp((lo + hi) / 2)


def iat_cdf(family: str, params: dict, x: np.ndarray) -> np.ndarray:
    """CDF of a fitted family; params hold arrays (one value per row), x is 2-D (rows, values)."""
    p = {k: np.asarray(v, dtype=float).reshape(-1, 1) for k, v in params.items()}
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if family == "exponential":
            return -scipy.special.expm1(-x / p["scale"])
        if family == "gamma":
            return scipy.special.gammainc(p["shape"], x / p["scale"])
        if family == "weibull":
            return -scipy.special.expm1(-((x / p["scale"]) ** p["shape"]))
        if family == "lognormal":  # as scipy.stats.lognorm evaluates it
            return scipy.special.ndtr(np.log(x / np.exp(p["mu"])) / p["sigma"])
        if family == "zipf":
            k = np.floor(x)
            return np.where(k >= 1, 1 - scipy.special.zeta(p["s"], k + 1) / scipy.special.zeta(p["s"], 1), 0.0)
        if family == "pareto_lognormal":
            body = scipy.special.ndtr((np.log(x) - p["mu"]) / p["sigma"])
            tail = np.where(x >= p["xm"], 1 - (p["xm"] / x) ** p["alpha"], 0.0)
            return p["weight"] * body + (1 - p["weight"]) * tail
    raise ValueError(f"unknown family {family}")


def ks_distance(x: np.ndarray, cdf: np.ndarray, discrete: bool = False) -> np.ndarray:
    """Two-sided KS distance per row between the empirical CDF of x (sorted, NaN-padded) and cdf.

    `cdf` holds F at each x; for data on integers, pass discrete=True and F evaluated at x + 0.5
    is compared with the ECDF after the tie block, F at x - 0.5 with the ECDF before it.
    """
    n = np.isfinite(x).sum(axis=1, keepdims=True)
    valid = np.isfinite(x)
    pos = np.broadcast_to(np.arange(1, x.shape[1] + 1, dtype=float), x.shape)
    r = np.where(valid, x, np.inf)
    same_next = np.zeros_like(valid)
    same_next[:, :-1] = r[:, :-1] == r[:, 1:]
    same_prev = np.zeros_like(valid)
    same_prev[:, 1:] = same_next[:, :-1]
    # ECDF after a tie block = position of its last member; before it = position of its first - 1.
    after = np.minimum.accumulate(np.where(same_next, np.inf, pos)[:, ::-1], axis=1)[:, ::-1]
    before = np.maximum.accumulate(np.where(same_prev, -np.inf, pos - 1), axis=1)
    hi_cdf, lo_cdf = cdf if isinstance(cdf, tuple) else (cdf, cdf)
    with np.errstate(invalid="ignore"):
        d1 = np.where(valid, after / n - hi_cdf, -np.inf)
        d2 = np.where(valid, lo_cdf - before / n, -np.inf)
    d = np.maximum(d1.max(axis=1), d2.max(axis=1))
    return np.where(n[:, 0] > 0, d, np.nan)


def fit_iat_rows(x: np.ndarray) -> dict[str, dict]:
    """MLE of the four inter-arrival families for each row of x (positive values, NaN padding).

    Returns {family: {"params": {name: array}, "loglik": array, "aic": array, "ks": array}}.
    """
    xs, n, mean, mean_log = _row_stats(x)
    xs = np.sort(xs, axis=1)
    sum_log = n * mean_log
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        var_log = np.nanmean((np.log(xs) - mean_log[:, None]) ** 2, axis=1)
        fits: dict[str, dict] = {}
        fits["exponential"] = {"params": {"scale": mean}, "loglik": -n * np.log(mean) - n}
        k = _gamma_shape(np.log(mean) - mean_log)
        theta = mean / k
        fits["gamma"] = {
            "params": {"shape": k, "scale": theta},
            "loglik": (k - 1) * sum_log - n * mean / theta - n * k * np.log(theta) - n * scipy.special.gammaln(k),
        }
        c = _weibull_shape(xs, mean_log)
        lam = np.nanmean(xs ** c[:, None], axis=1) ** (1 / c)
        fits["weibull"] = {
            "params": {"shape": c, "scale": lam},
            "loglik": n * np.log(c) - n * c * np.log(lam) + (c - 1) * sum_log - np.nansum((xs / lam[:, None]) ** c[:, None], axis=1),
        }
        sigma = np.sqrt(var_log)
        fits["lognormal"] = {
            "params": {"mu": mean_log, "sigma": sigma},
            "loglik": -sum_log - n * np.log(sigma) - n / 2 * math.log(2 * math.pi) - n / 2,
        }
    return _score(fits, xs, n)


def _score(fits: dict[str, dict], xs: np.ndarray, n: np.ndarray) -> dict[str, dict]:
    """AIC, BIC and KS distance of each fit (continuous data; discrete data: `_score_counts`)."""
    for family, fit in fits.items():
        cdf = iat_cdf(family, fit["params"], xs)
        fit["aic"] = 2 * N_PARAMS[family] - 2 * fit["loglik"]
        fit["bic"] = N_PARAMS[family] * np.log(np.maximum(n, 1)) - 2 * fit["loglik"]
        fit["ks"] = ks_distance(xs, cdf)
        fit["ks"] = np.where(n >= 2, fit["ks"], np.nan)
    return fits


def best_family(fits: dict[str, dict], bic_margin: float = DEFAULTS.stages.bic_margin,
                ks_max: float = DEFAULTS.stages.ks_fits) -> np.ndarray:
    """Per row, the family chosen by BIC, preferring the simpler: among the families that fit (KS
    at most `ks_max`; all of them when none does), those whose BIC is within `bic_margin` of the
    smallest are fits the data cannot tell apart, and the one with the fewest parameters (then the
    smaller BIC) is chosen. Nested in gamma and Weibull, exponential wins unless the extra shape
    raises the log-likelihood by more than (ln n + margin) / 2, so Poisson arrivals are exponential."""
    names = list(fits)
    bic = np.vstack([np.where(np.isfinite(fits[f]["bic"]), fits[f]["bic"], np.inf) for f in names])
    ks = np.vstack([np.where(np.isfinite(fits[f]["ks"]), fits[f]["ks"], np.inf) for f in names])
    fitting = ks <= ks_max
    bic = np.where(fitting | ~fitting.any(axis=0), bic, np.inf)
    k = np.array([N_PARAMS[f] for f in names], dtype=float)[:, None]
    close = bic <= bic.min(axis=0) + bic_margin
    simplest = np.where(close, k, np.inf)
    pick = np.where(simplest == simplest.min(axis=0), bic, np.inf)
    best = np.array(names, dtype=object)[np.argmin(pick, axis=0)]
    return np.where(np.isfinite(bic.min(axis=0)), best, None)


def chosen_fit(fits: dict[str, dict], ks_max: float = DEFAULTS.stages.ks_fits,
               bic_margin: float = DEFAULTS.stages.bic_margin) -> dict:
    """The chosen family of a one-row fit (best_family) as JSON-ready numbers, with `fits` (its KS
    distance is at most `ks_max`) and how it was chosen."""
    family = best_family(fits, bic_margin, ks_max)[0]
    out = row_fit(fits, family)
    untested = isinstance(out["ks"], dict)  # the data cannot test it: `fits` is absent for the same reason
    return {**out, "fits": out["ks"] if untested else bool(out["ks"] <= ks_max), "ks_max": ks_max,
            "chosen_by": f"among the families with KS <= {ks_max:g} (all when none), the simplest within "
                         f"{bic_margin:g} of the smallest BIC"}


def row_fit(fits: dict[str, dict], family: str, row: int = 0) -> dict:
    """One row of one family as plain JSON-ready numbers (a KS the data cannot test, `ks_absent`:
    {"absent": reason})."""
    f = fits[family]
    ks = float(f["ks"][row])
    return {
        "family": family,
        "params": {k: float(v[row]) for k, v in f["params"].items()},
        "ks": {"absent": f["ks_absent"]} if f.get("ks_absent") and not math.isfinite(ks) else ks,
        "aic": float(f["aic"][row]),
        "bic": float(f["bic"][row]),
    }


def _zipf_exponent(x: np.ndarray, counts: np.ndarray | None = None) -> float:
    """The MLE of the Zipf exponent s on [1.0001, 20] of x (each value `counts` times): the negative
    log-likelihood s * sum(log x) + n * log(zeta(s)) is convex in s (log zeta is), so a grid narrowed
    around its minimum five times finds it to ~1e-9 (scipy.optimize would cost ~1 s of import on every run)."""
    w = np.ones(len(x)) if counts is None else np.asarray(counts, dtype=float)
    sum_log, n = float((w * np.log(x)).sum()), float(w.sum())
    lo, hi = 1.0001, 20.0
    for _ in range(5):
        s = np.linspace(lo, hi, 129)
        nll = s * sum_log + n * np.log(scipy.special.zeta(s, 1))
        i = int(np.argmin(nll))
        lo, hi = s[max(i - 1, 0)], s[min(i + 1, s.size - 1)]
    return float(s[i])


def _pareto_lognormal(x: np.ndarray, counts: np.ndarray) -> dict | None:
    """EM for w LN(mu, sigma) + (1 - w) Pareto(alpha, xm), xm chosen among upper quantiles by likelihood.

    Token counts repeat: the EM runs on the distinct values x (ascending) weighted by their
    `counts` (the same sums as over every value, on about 20x fewer points). The candidate xm run
    side by side, one row of each array per xm (the same operations element by element and row
    by row as one EM per xm, on a quarter of the calls)."""
    xq = np.repeat(x, counts)  # the quantiles xm is chosen among
    c = np.asarray(counts, dtype=float)
    n = c.sum()
    ln = np.log(x)
    mean_ln = float((c * ln).sum() / n)
    xms = [xm for q in (0.5, 0.75, 0.9, 0.95) if (xm := float(np.quantile(xq, q))) > 0 and c[x >= xm].sum() >= 10]
    if not xms:
        return None
    xm = np.array(xms)[:, None]
    log_xm = np.array([math.log(v) for v in xms])[:, None]
    in_tail = x >= xm
    log_ratio = np.where(in_tail, np.log(np.maximum(x, xm) / xm), 0.0)
    k = len(xms)
    w, mu, alpha = np.full((k, 1), 0.8), np.full((k, 1), mean_ln), np.full((k, 1), 1.5)
    sigma = np.full((k, 1), float(math.sqrt((c * (ln - mean_ln) ** 2).sum() / n) or 1.0))
    root = math.sqrt(2 * math.pi)

    def densities() -> tuple[np.ndarray, np.ndarray]:
        body = w * np.exp(-0.5 * ((ln - mu) / sigma) ** 2) / (x * sigma * root)
        return body, np.where(in_tail, (1 - w) * alpha * np.exp(alpha * log_xm - (alpha + 1) * ln), 0.0)

    def row_sum(a: np.ndarray) -> np.ndarray:
        return a.sum(axis=1, keepdims=True)

    for _ in range(60):
        body, tail = densities()
        total = body + tail
        r = np.where(total > 0, body / np.where(total > 0, total, 1), 1.0)
        cr = c * r
        weight = row_sum(cr)
        w = np.clip(weight / n, 1e-6, 1 - 1e-6)
        mu = row_sum(cr * ln) / weight
        sigma = np.maximum(np.sqrt(row_sum(cr * (ln - mu) ** 2) / weight), 1e-6)
        t = c * (1 - r) * in_tail
        alpha = np.clip(row_sum(t) / np.maximum(row_sum(t * log_ratio), 1e-12), 1e-3, 50.0)
    body, tail = densities()
    loglik = (c * np.log(np.maximum(body + tail, 1e-300))).sum(axis=1)
    best = 0
    for i in range(1, k):  # the first of the largest (a NaN is never replaced, nor replaces)
        if loglik[i] > loglik[best]:
            best = i
    return {"params": {"weight": float(w[best, 0]), "mu": float(mu[best, 0]), "sigma": float(sigma[best, 0]),
                       "alpha": float(alpha[best, 0]), "xm": xms[best]}, "loglik": float(loglik[best])}


def fit_length_families(x: np.ndarray) -> dict[str, dict]:
    """MLE of the length families on positive token counts x (1-D), scored as discrete data.

    Token counts repeat (a 200 k-row sample holds a few thousand distinct values): every sum runs
    over the distinct values weighted by their counts, the same sums as over every value up to
    the order of additions (the fits agree to ~1e-12 relative, tests/test_stages_lengths.py)."""
    x = np.asarray(x, dtype=float)
    v, c = np.unique(x[x > 0], return_counts=True)
    w = c.astype(float)
    n = int(c.sum())
    ln = np.log(v)
    sum_log = float((w * ln).sum())
    mean, mean_log = np.float64((w * v).sum()) / max(n, 1), np.float64(sum_log) / max(n, 1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        sigma = np.sqrt(np.float64((w * (ln - mean_log) ** 2).sum()) / n) if n else math.nan
        k = float(_gamma_shape(np.array([np.log(mean) - mean_log]))[0]) if n else math.nan
        shape = _weighted_weibull_shape(v, w, mean_log) if n else math.nan
        lam = ((w * v ** shape).sum() / n) ** (1 / shape) if n else math.nan
        fits = {
            "lognormal": {"params": {"mu": mean_log, "sigma": sigma},
                          "loglik": -sum_log - n * np.log(sigma) - n / 2 * math.log(2 * math.pi) - n / 2},
            "exponential": {"params": {"scale": mean}, "loglik": -n * np.log(mean) - n},
            "gamma": {"params": {"shape": k, "scale": mean / k},
                      "loglik": (k - 1) * sum_log - n * mean / (mean / k) - n * k * np.log(mean / k)
                      - n * scipy.special.gammaln(k)},
            "weibull": {"params": {"shape": shape, "scale": lam},
                        "loglik": n * np.log(shape) - n * shape * np.log(lam) + (shape - 1) * sum_log
                        - (w * (v / lam) ** shape).sum()},
        } if n else {}
    if n >= 2:
        s = _zipf_exponent(v, w)
        fits["zipf"] = {"params": {"s": s}, "loglik": -s * sum_log - n * math.log(scipy.special.zeta(s, 1))}
        mix = _pareto_lognormal(v, c)
        if mix is not None:
            fits["pareto_lognormal"] = mix
    ordered = {f: {"params": {k_: np.array([float(p)]) for k_, p in fits[f]["params"].items()},
                   "loglik": np.array([float(fits[f]["loglik"])])} for f in LENGTH_FAMILIES if f in fits}
    return _score_counts(ordered, v, c)


def _weighted_weibull_shape(v: np.ndarray, w: np.ndarray, mean_log: float) -> float:
    """`_weibull_shape` of the values v repeated w times."""
    y = v / v.max()
    ln_y = np.log(y)
    target = mean_log - math.log(v.max())
    lo, hi = math.log(1e-3), math.log(1e3)
    for _ in range(50):
        mid = (lo + hi) / 2
        k = math.exp(mid)
        wyk = w * y ** k
        g = float((wyk * ln_y).sum()) / float(wyk.sum()) - 1 / k - target
        lo, hi = (lo, mid) if g > 0 else (mid, hi)
    return math.exp((lo + hi) / 2)


def _score_counts(fits: dict[str, dict], v: np.ndarray, c: np.ndarray) -> dict[str, dict]:
    """`_score` of discrete data given as distinct values v (ascending) and their counts c: the
    KS distance is reached at a value (the ECDF after and before its tie block), the
    log-likelihood is each value's probability mass times its count."""
    n = np.array([int(c.sum())])
    after = np.cumsum(c)[None, :].astype(float)
    before = after - c
    for family, fit in fits.items():
        hi, lo = (0.0, -1.0) if family == "zipf" else (0.5, -0.5)
        p = fit["params"]
        f_hi, f_lo = iat_cdf(family, p, v[None, :] + hi), iat_cdf(family, p, v[None, :] + lo)
        below = 0.0 if family == "zipf" else iat_cdf(family, p, np.full((1, 1), 0.5))[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            fit["loglik"] = (np.nansum(c * np.log(np.maximum(f_hi - f_lo, 1e-300)), axis=1)
                             - n * np.log(np.maximum(1 - below, 1e-300)))
            ks = np.maximum(np.max(after / n[:, None] - f_hi, axis=1), np.max(f_lo - before / n[:, None], axis=1))
        fit["aic"] = 2 * N_PARAMS[family] - 2 * fit["loglik"]
        fit["bic"] = N_PARAMS[family] * np.log(np.maximum(n, 1)) - 2 * fit["loglik"]
        fit["ks"] = np.where(n >= 2, ks, np.nan)
    return fits
