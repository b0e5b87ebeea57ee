"""Modes of a distribution: separated histogram peaks, and the evidence for two of them."""

from __future__ import annotations

import math

import numpy as np

from servetrace.settings import DEFAULTS, StageSettings


def histogram_peaks(share: np.ndarray, centers: np.ndarray, prominence: float = DEFAULTS.stages.peak_prominence) -> list[dict]:
    """Separated local maxima of a histogram (scipy.signal.find_peaks on the shares, padded with an
    empty bin at each end so an edge bin can be a peak), each rising at least `prominence` x the
    highest share above the lower of its two surrounding valleys; highest first."""
    from scipy import signal  # only when a trace has reasoning tokens: keeps characterize's start fast

    share = np.asarray(share, dtype=float)
    if share.size == 0 or share.max() <= 0:
        return []
    padded = np.concatenate([[0.0], share, [0.0]])
    idx, props = signal.find_peaks(padded, prominence=prominence * share.max())
    order = np.argsort(-padded[idx], kind="stable")
    return [{"at": float(centers[idx[i] - 1]), "share": float(padded[idx[i]]),
             "prominence": float(props["prominences"][i])} for i in order]


def gaussian_mixture_2(y: np.ndarray, iterations: int = 200, tol: float = 1e-9) -> dict:
    """EM for a two-component 1-D Gaussian mixture, started at the quartiles; components sorted by mean."""
    w = np.array([0.5, 0.5])
    mu = np.quantile(y, [0.25, 0.75]).astype(float)
    sd = np.full(2, max(float(y.std()) / 2, 1e-3))
    prev = -np.inf
    for _ in range(iterations):
        dens = w * np.exp(-0.5 * ((y[:, None] - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
        total = dens.sum(axis=1, keepdims=True)
        loglik = float(np.log(np.maximum(total, 1e-300)).sum())
        r = dens / np.maximum(total, 1e-300)
        nk = r.sum(axis=0)
        w = nk / len(y)
        mu = (r * y[:, None]).sum(axis=0) / np.maximum(nk, 1e-12)
        sd = np.sqrt((r * (y[:, None] - mu) ** 2).sum(axis=0) / np.maximum(nk, 1e-12))
        sd = np.maximum(sd, 1e-3)
        if abs(loglik - prev) < tol * abs(loglik):
            break
        prev = loglik
    order = np.argsort(mu)
    return {"weights": w[order], "means": mu[order], "sds": sd[order], "loglik": loglik}


def bimodality(y: np.ndarray, mix: dict, t: StageSettings = DEFAULTS.stages) -> dict:
    """Evidence for two modes: BIC of one vs two Gaussians, Ashman's D, and the bimodality
    coefficient; `bimodal` when all three thresholds of `t` hold (bimodal_*: two Gaussians beat one by
    this much BIC, their means are this far apart, the smaller holds this share)."""
    from scipy import stats

    n = len(y)
    sd1 = float(y.std()) or 1e-3
    loglik1 = float(-n * math.log(sd1 * math.sqrt(2 * math.pi)) - n / 2)
    bic1 = 2 * math.log(n) - 2 * loglik1
    bic2 = 5 * math.log(n) - 2 * mix["loglik"]
    m, s = mix["means"], mix["sds"]
    ashman = float(math.sqrt(2) * abs(m[1] - m[0]) / math.sqrt(s[0] ** 2 + s[1] ** 2))
    g = float(stats.skew(y))
    k = float(stats.kurtosis(y))  # excess
    bc = (g**2 + 1) / (k + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))) if n > 3 else None
    bimodal = bool(bic1 - bic2 > t.bimodal_delta_bic and ashman > t.bimodal_ashman_d
                   and min(mix["weights"]) >= t.bimodal_min_weight)
    return {"delta_bic": bic1 - bic2, "ashman_d": ashman, "bimodality_coefficient": bc, "bimodal": bimodal}
