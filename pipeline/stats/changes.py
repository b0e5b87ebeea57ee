"""Change points of a sequence of distributions: the periods that differ from their predecessor."""

from __future__ import annotations

import numpy as np
import scipy  # scipy.special loads on first use (scipy's lazy submodules)

from servetrace.settings import DEFAULTS


def ks_critical(n1: np.ndarray, n2: np.ndarray, alpha: float = DEFAULTS.stages.drift_alpha) -> np.ndarray:
    """Asymptotic two-sample KS critical value: Kolmogorov's quantile times sqrt((n1 + n2) / (n1 n2))."""
    return scipy.special.kolmogi(alpha) * np.sqrt((n1 + n2) / (n1 * n2))  # kolmogi = scipy.stats.kstwobign.isf


def change_points(ks_vs_previous: np.ndarray, n: np.ndarray, ks_min: float = DEFAULTS.stages.drift_ks,
                  alpha: float = DEFAULTS.stages.drift_alpha) -> np.ndarray:
    """Per period (in order), True where its KS distance to the previous period exceeds both `ks_min`
    (an effect worth reporting) and the critical value at `alpha` for the two periods' sizes (not
    sampling noise); the first period has no predecessor."""
    ks = np.asarray(ks_vs_previous, dtype=float)
    n = np.asarray(n, dtype=float)
    crit = np.full(len(ks), np.inf)
    crit[1:] = ks_critical(n[1:], n[:-1], alpha)
    with np.errstate(invalid="ignore"):
        return np.isfinite(ks) & (ks > ks_min) & (ks > crit)
