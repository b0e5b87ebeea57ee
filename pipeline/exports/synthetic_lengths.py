"""Normal parameters that make a tool's synthetic lengths realize the trace's mean and std.

AIPerf and guidellm take a mean and a std but draw from a bounded normal, so the numbers passed are
not the numbers realized (passing the sample mean and std gives a realized mean 27-104 % too high
on heavy-tailed traces). Each tool's draw, as its 0.13.0 / 0.8.1 wheel codes it:

- AIPerf (config/distributions.py, common/random_generator.py): x ~ N(mu, sigma) redrawn until
  x >= 0 (a normal truncated at 0), length max(1, ceil(x)); its CLI takes mu as an integer (0 would
  switch output off), sigma as a float.
- guidellm (utils/random.py IntegerRangeSampler): round(min(max(x, lo), hi)), x ~ N(mu, sigma), a
  normal clipped (not truncated) to [lo, hi]; mu and sigma are integers.

`match(tool, mean, std, lo, hi)` solves for (mu, sigma) whose realized mean and std equal the
targets (closed-form moments of the truncated or clipped normal, the integer step as +0.5 in the mean
and +1/12 in the variance), and says when the tool cannot reach them: AIPerf's truncated normal with
mu >= 1 has a CV of at most about 0.756 (the half-normal); guidellm's clipped one a little over 1.4. Then
the mean is kept and the std is the closest the tool reaches; `realized` says what it gives."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import least_squares
from scipy.stats import norm

MEAN_TOL, STD_TOL = 0.01, 0.02  # relative (or half a token, the integer mean's step): within these it matches


def aiperf_moments(mu: float, sigma: float) -> tuple[float, float]:
    """Mean and std of max(1, ceil(x)), x ~ N(mu, sigma) truncated to [0, inf)."""
    if sigma <= 0:
        v = max(1.0, float(round(mu)))
        return v, 0.0
    a = -mu / sigma
    lam = math.exp(norm.logpdf(a) - norm.logsf(a))  # inverse Mills ratio, stable far in the tail
    mean = mu + sigma * lam
    var = sigma**2 * max(1.0 + a * lam - lam**2, 0.0)
    return mean + 0.5, math.sqrt(var + 1.0 / 12.0)


def guidellm_moments(mu: float, sigma: float, lo: float, hi: float) -> tuple[float, float]:
    """Mean and std of round(clip(x, lo, hi)), x ~ N(mu, sigma)."""
    if sigma <= 0:
        v = float(min(max(mu, lo), hi))
        return v, 0.0
    a, b = (lo - mu) / sigma, (hi - mu) / sigma
    pa, pb = norm.cdf(a), norm.sf(b)
    fa, fb = norm.pdf(a), norm.pdf(b)
    mid = 1.0 - pa - pb
    m1 = lo * pa + hi * pb + mu * mid + sigma * (fa - fb)
    m2 = (lo**2 * pa + hi**2 * pb + (mu**2 + sigma**2) * mid + 2 * mu * sigma * (fa - fb)
          + sigma**2 * (a * fa - b * fb))
    inner = 1.0 / 12.0 * mid  # rounding spreads only the unclipped part
    return m1, math.sqrt(max(m2 - m1**2, 0.0) + inner)


def _solve(moments, mean: float, std: float, mu_min: float) -> tuple[float, float]:
    def resid(p):
        m, s = moments(p[0], math.exp(p[1]))
        return [10.0 * (m - mean) / mean, (s - std) / std]  # the mean first: it sets the load

    start = [max(mean, mu_min), math.log(max(std, 1e-6))]
    fit = least_squares(resid, start, bounds=([mu_min, -20.0], [np.inf, math.log(1e3 * std + 1e3)]))
    return float(fit.x[0]), float(math.exp(fit.x[1]))


def match(tool: str, mean: float, std: float, lo: int = 1, hi: int | None = None) -> dict:
    """The (mu, sigma) to pass `tool` for lengths of this mean and std, and what they realize."""
    if tool == "aiperf":
        moments, mu_min = aiperf_moments, 1.0
    elif tool == "guidellm":
        top = float(hi if hi is not None else mean + 10 * std)
        moments, mu_min = (lambda m, s: guidellm_moments(m, s, float(lo), top)), 1.0
    else:
        raise ValueError(f"no synthetic-length model for {tool}")
    if std <= 0 or mean <= 0:
        mu, sigma = max(1.0, mean), 0.0
    else:
        mu, sigma = _solve(moments, mean, std, mu_min)
    if sigma > 0:  # integer means (both tools): the better of the two neighbours, sigma solved again for each
        def std_for(m: int) -> float:
            def resid(p):
                got_m, got_s = moments(m, math.exp(p[0]))
                return [10.0 * (got_m - mean) / mean, (got_s - std) / std]

            return float(math.exp(least_squares(resid, [math.log(sigma)]).x[0]))

        def err(m: int, sg: float) -> float:
            got_m, got_s = moments(m, sg)
            return 10.0 * abs(got_m - mean) / mean + abs(got_s - std) / std

        cands = [(m, std_for(m)) for m in {max(1, math.floor(mu)), max(1, math.ceil(mu))}]
        mu, sigma = min(cands, key=lambda c: err(*c))
        sigma = max(1, round(sigma)) if tool == "guidellm" else round(sigma, 2)  # guidellm's stdev is an int
    else:
        mu = max(1, round(mu))
    got_mean, got_std = moments(mu, sigma)
    ok = abs(got_mean - mean) <= max(MEAN_TOL * mean, 0.5) and abs(got_std - std) <= max(STD_TOL * std, 0.5)
    return {"mean": int(mu), "stddev": sigma, "target": {"mean": mean, "std": std},
            "realized": {"mean": float(got_mean), "std": float(got_std)}, "matched": bool(ok)}


def shortfall(tool: str, field: str, m: dict) -> str | None:
    """A sentence for the card when the tool cannot realize the trace's mean and std, else None."""
    if m["matched"]:
        return None
    t, r = m["target"], m["realized"]
    shape = ("a normal cut at 0 with mean >= 1 (CV at most 0.76)" if tool == "aiperf"
             else "a normal clipped to [min, max]")
    return (f"{field} lengths of CV {t['std'] / t['mean']:.2f}: it draws {shape}; mean {m['mean']}, stddev "
            f"{m['stddev']} realize mean {r['mean']:.0f}, std {r['std']:.0f} (trace: mean {t['mean']:.0f}, "
            f"std {t['std']:.0f})")
