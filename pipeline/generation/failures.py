"""Which synthetic requests fail: a Bernoulli draw per request at its client's failure rate in
that window (the client's whole-span rate where the window has none), one stream per client."""

from __future__ import annotations

import numpy as np

from servetrace.generation.arrivals import client_seed

FAILURE_STREAM = 2  # client_seed purpose: 0 arrivals, 1 lengths, 2 failures


def failure_probabilities(bundle: dict, chosen: list[int]) -> np.ndarray | None:
    """Dense (clients x bundle windows) failure probabilities; None when the bundle has none."""
    if "failures" not in bundle:
        return None
    grid = np.asarray(bundle["aggregate"]["window_start_s"], dtype=float)
    p = np.zeros((len(chosen), len(grid)))
    for row, ci in enumerate(chosen):  # one pass per client, not per request
        c = bundle["clients"][ci]
        p[row] = c.get("failure_rate", 0.0)
        w = c["windows"]
        if "failure_rate" in w and w["start_s"]:
            col = np.searchsorted(grid, np.asarray(w["start_s"], dtype=float))
            fr = np.array([np.nan if v is None else v for v in w["failure_rate"]], dtype=float)
            p[row, col] = np.where(np.isnan(fr), p[row, col], fr)
    return p


def draw_failures(p: np.ndarray | None, chosen: list[int], client: np.ndarray, window: np.ndarray, seed: int,
                  block: int = 0) -> np.ndarray | None:
    """`failed` of each request of a block (`p`: failure_probabilities; `client`: row in `chosen`,
    each client's requests contiguous; `window`: bundle window index), or None when `p` is None."""
    if p is None:
        return None
    n = len(client)
    u = np.empty(n)
    bounds = np.r_[0, np.flatnonzero(np.diff(client)) + 1, n] if n else np.zeros(1, dtype=np.int64)
    for a, b in zip(bounds[:-1], bounds[1:]):  # one block of uniforms per client
        u[a:b] = client_seed(seed, chosen[int(client[a])], FAILURE_STREAM, block).random(b - a)
    return u < p[client, window]
