"""A rate modulation at several time scales: the doubly stochastic (Cox) part of the arrival model.

A per-window renewal process (ServeGen's model) has counts whose index of dispersion levels off
at the gaps' CV^2 within a window; real traces keep climbing (Azure code: IDC 13 -> 72 -> 164 ->
195 from 1 s to 600 s) because bursts and idle stretches are correlated over seconds to minutes.
Here every client's rate is multiplied by one shared mean-1 log-Gaussian process

    M(t) = exp(sum_k X_k(t) - sum_k sigma_k^2 / 2),  X_k Ornstein-Uhlenbeck with time scale theta_k,

so counts in a bin of tau seconds inside a window of rate r have variance r tau + r^2 I(tau), with
I(tau) = 2 int_0^tau (tau - u) C(u) du and C(u) = exp(sum_k sigma_k^2 exp(-u / theta_k)) - 1.

Fit: inside each fully covered window (the window rates are the bundle's), the scatter of the
counts of tau-second bins about the window's mean, summed over windows and divided by their
requests, is D(tau) = (1 - 1/m) + (sum r^2 / sum r) (m I(tau) - I(W) / m) / W (m = W / tau bins per
window); the sigma_k^2 >= 0 minimize the squared log error of D over the taus (scipy least_squares),
each scale weighted by sqrt(m - 1), as the scatter of D shrinks with the bins per window.
Generation (generate/modulation.py) runs each client's process in the time M integrates to. The
time scales, bin sizes and variance floor are settings.ModulationSettings."""

from __future__ import annotations

import functools

import numpy as np

from servetrace.settings import ModulationSettings


@functools.lru_cache(maxsize=16)
def _grid(window_s: float, theta_s: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The integration grid of `_integrals` (fine near 0), each component's exp(-u / theta) on it,
    and its steps: the same for every evaluation of a fit (read-only, shared)."""
    u = np.unique(np.r_[np.linspace(0, 5, 2001), np.geomspace(5, window_s, 4000)])
    decay = np.exp(-u[:, None] / np.asarray(theta_s)[None, :])
    du = np.diff(u)
    for a in (u, decay, du):
        a.flags.writeable = False
    return u, decay, du


def _integrals(sigma2: np.ndarray, taus: np.ndarray, window_s: float, theta_s: tuple[float, ...]) -> np.ndarray:
    """I(tau) for each tau and for the window, by the trapezoid rule on a grid fine near 0."""
    u, decay, du = _grid(float(window_s), tuple(float(t) for t in theta_s))
    c = np.expm1(decay @ sigma2)
    first = np.r_[0, np.cumsum((c[1:] + c[:-1]) / 2 * du)]  # int_0^x C
    uc = u * c
    second = np.r_[0, np.cumsum((uc[1:] + uc[:-1]) / 2 * du)]  # int_0^x u C
    x = np.r_[taus, window_s]
    return 2 * (x * np.interp(x, u, first) - np.interp(x, u, second))


def model_dispersion(sigma2: np.ndarray, taus: np.ndarray, window_s: float, r_eff: float,
                     theta_s: tuple[float, ...] = ModulationSettings.theta_s) -> np.ndarray:
    """D(tau) of the model (components of time scales `theta_s`) for windows of `window_s` seconds
    with sum r^2 / sum r = r_eff."""
    i = _integrals(np.asarray(sigma2, dtype=float), taus, window_s, theta_s)
    m = window_s / taus
    return (1 - 1 / m) + r_eff * (m * i[:-1] - i[-1] / m) / window_s


def observed_dispersion(counts: np.ndarray, bin_s: float, window_s: float, taus=ModulationSettings.tau_s) -> tuple[np.ndarray, np.ndarray, float]:
    """(taus, D(tau), r_eff) from counts per `bin_s` bin of fully covered windows laid end to end
    (len(counts) a multiple of window_s / bin_s). Taus that do not divide the window are skipped."""
    per_window = int(round(window_s / bin_s))
    w = counts.reshape(-1, per_window).astype(float)
    totals = w.sum(axis=1)
    keep = totals > 0
    w, totals = w[keep], totals[keep]
    if totals.sum() == 0:
        return np.zeros(0), np.zeros(0), 0.0
    r = totals / window_s
    r_eff = float((r**2).sum() / r.sum())
    out_t, out_d = [], []
    for tau in taus:
        k = int(round(tau / bin_s))
        if k < 1 or per_window % k or per_window // k < 2:
            continue
        n = w.reshape(len(w), per_window // k, k).sum(axis=2)
        scatter = ((n - n.mean(axis=1, keepdims=True)) ** 2).sum()
        out_t.append(tau)
        out_d.append(scatter / totals.sum())
    return np.asarray(out_t), np.asarray(out_d), r_eff


def fit_modulation(counts: np.ndarray, bin_s: float, window_s: float, resolution_s: float = 0.0,
                   t: ModulationSettings = ModulationSettings()) -> dict | None:
    """The components' variances fitted to the counts of fully covered windows; None without data.
    Bins shorter than twice the timestamps' `resolution_s` are not fitted: with whole-second
    timestamps every request of a second falls in its first quarter-second bin, a dispersion
    the rounding made, not the arrivals."""
    taus = tuple(tau for tau in t.tau_s if tau >= 2 * resolution_s)
    taus, d, r_eff = observed_dispersion(counts, bin_s, window_s, taus)
    ok = d > 0
    if ok.sum() < 3 or r_eff <= 0:
        return None
    taus, d = taus[ok], d[ok]

    # the scatter of D(tau) shrinks with the bins a window holds: weight each scale by sqrt(m - 1)
    weight = np.sqrt(window_s / taus - 1)
    weight /= weight.max()

    def residual(log_s2):
        return weight * (np.log(model_dispersion(np.exp(log_s2), taus, window_s, r_eff, t.theta_s)) - np.log(d))

    start = np.full(len(t.theta_s), np.log(0.1))
    from scipy.optimize import least_squares  # the fit alone needs it, not generate

    fit = least_squares(residual, start, bounds=(np.log(1e-6), np.log(20.0)))
    sigma2 = np.exp(fit.x)
    sigma2[sigma2 < t.min_sigma2] = 0.0
    model = model_dispersion(sigma2, taus, window_s, r_eff, t.theta_s)
    return {"kind": "log-gaussian OU", "theta_s": list(t.theta_s), "sigma2": sigma2.tolist(), "bin_s": bin_s,
            "fit": {"tau_s": taus.tolist(), "observed": d.tolist(), "model": model.tolist(), "r_eff": r_eff,
                    "rms_log_error": float(np.sqrt(np.average((np.log(model) - np.log(d)) ** 2, weights=weight**2)))}}
