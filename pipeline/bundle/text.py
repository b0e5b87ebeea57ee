"""A bundle's numbers as its JSON keeps them: probabilities to 6 significant digits (each PMF still
summing to 1), every other float to 10, NaN as null, numpy scalars as Python numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from servetrace.io import json_value

PROB_DIGITS = 6  # significant digits kept for probabilities (the residue goes to the largest)
NUM_DIGITS = 10  # significant digits kept for every other float
RESIDUE_REL = 2e-6  # the most a probability moves, relative, when the rounding residue is put back


def rounded_probs(probs: Any) -> list:
    """Probabilities to 6 significant digits, the rounding residue put back on the largest ones
    (as few as keep each within RESIDUE_REL of its value, in proportion to their size) so the PMF
    still sums to 1 within 1e-9 and no probability moves by more than 1e-5 of itself. A PMF whose
    numbers JSON already keeps (every one at most 10 significant digits: what this returns, or what
    a saved bundle loads) stays as it is, so rounding twice is rounding once."""
    exact = np.asarray(probs, dtype=float)
    kept = [json_value(p, NUM_DIGITS) for p in exact.tolist()]
    if kept == exact.tolist():
        return kept
    rounded = [json_value(p, PROB_DIGITS) for p in exact.tolist()]
    if any(r is None for r in rounded):
        return rounded  # NaN / inf: validation reports it
    residue = exact.sum() - math.fsum(rounded)
    order = np.argsort(-np.asarray(rounded), kind="stable")
    top = np.cumsum(np.asarray(rounded)[order])
    m = int(min(np.searchsorted(top, abs(residue) / RESIDUE_REL) + 1, len(order)))
    mass = top[m - 1]
    for i in order[:m].tolist():
        rounded[i] = json_value(rounded[i] + (residue * rounded[i] / mass if mass > 0 else residue / m), NUM_DIGITS)
    return rounded


def compact_numbers(obj: Any, key: str = "") -> Any:
    """Numbers rounded to what the data supports (probabilities 6, others 10 significant digits),
    NaN -> null, numpy scalars -> Python: keeps a 147-client, 14-day pool well under 20 MB."""
    if isinstance(obj, dict):
        return {str(k): compact_numbers(v, str(k)) for k, v in obj.items()}
    if key == "probs" and isinstance(obj, (list, tuple, np.ndarray)) and len(obj) > 1:
        return rounded_probs(obj)
    if isinstance(obj, (list, tuple, np.ndarray)):
        digits = PROB_DIGITS if key == "probs" else NUM_DIGITS
        return [compact_numbers(v, key) if isinstance(v, (dict, list, tuple, np.ndarray)) else json_value(v, digits)
                for v in obj]
    return json_value(obj, NUM_DIGITS)
