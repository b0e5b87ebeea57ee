"""How much a session trace's requests clump inside a window: the count-noise factor its window
rates are shrunk with (generation/arrivals.shrunk). A window's request count varies more than
its starts' when a session brings several of its turns into the same window."""

from __future__ import annotations

import numpy as np

CLUMP_SESSIONS = 20_000  # sessions drawn per session model
CLUMP_SEED = 0xC1_0A7


def window_clumping(sess: dict, window_s: float) -> float:
    """K = sum over (session, window) of m^2 / sum of m, m a session's requests in one window:
    a window's request count has variance K x its mean when sessions start as a Poisson process
    (1 when every session is one request; E[turns^2] / E[turns] when a session's turns all fall in
    one window). Sessions of the model start uniformly inside a window and follow its turns and
    gaps on the wall clock; one fixed draw (CLUMP_SEED), the same for every generation seed.
    Loops over turn numbers, vectorized across sessions."""
    from servetrace.generation.sessions import MAX_TURNS, draw_gaps, first_turns

    rng = np.random.default_rng(np.random.SeedSequence([CLUMP_SEED]))
    turns, _, _, bucket = first_turns(rng, sess, 0.0, CLUMP_SESSIONS)
    turns = np.minimum(turns, MAX_TURNS)
    t = rng.random(CLUMP_SESSIONS) * window_s
    hits = [(np.arange(CLUMP_SESSIONS), t.copy())]
    active = np.arange(CLUMP_SESSIONS)
    for k in range(2, int(turns.max(initial=1)) + 1):
        active = active[turns[active] >= k]
        t[active] += draw_gaps(rng, sess, None if bucket is None else bucket[active], k, turns[active])
        hits.append((active, t[active].copy()))
    session = np.concatenate([h[0] for h in hits])
    window = np.floor(np.concatenate([h[1] for h in hits]) / window_s).astype(np.int64)
    _, m = np.unique(session * (int(window.max(initial=0)) + 1) + window, return_counts=True)
    return float((m.astype(float) ** 2).sum() / m.sum())


def client_clumping(bundle: dict, clients: list[int]) -> np.ndarray:
    """K of each client's session model (`sessions.clients`, the pooled tail, else the trace's)."""
    from servetrace.generation.session_clients import session_models

    models, key = session_models(bundle["sessions"], np.asarray(clients, dtype=np.int64), len(clients))
    window_s = float(bundle["window_s"])
    return np.array([window_clumping(m, window_s) for m in models])[key]


def shrunk_start_shares(sess: dict) -> dict:
    """The session model with `start_share`'s per-bin shares drawn toward the trace's (starts over
    requests) by sqrt(1 - noise / var), as window rates are (arrivals.shrunk): a bin's share is
    its starts over its requests, whose count noise the generation would otherwise add again.
    With turns m per session (the model's PMF), a bin of R requests has share noise
    share^3 Var(m) / R (delta method for starts / requests when a session's turns share its bin;
    binomial share (1 - share) / R for geometric turns). Requests kept: the centre is weighted by
    requests."""
    by = sess.get("start_share")
    if not by or not by.get("requests"):
        return sess
    share = np.array([np.nan if v is None else v for v in by["share"]], dtype=float)
    r = np.asarray(by["requests"], dtype=float)
    on = np.isfinite(share) & (r > 0)
    if on.sum() < 2:
        return sess
    t = sess["turns"]
    m, p = np.asarray(t["values"], dtype=float), np.asarray(t["probs"], dtype=float)
    p = p / p.sum()
    var_m = float((p * m**2).sum() - (p * m).sum() ** 2)
    s = share[on]
    var = s.var(ddof=1)
    if var <= 0:
        return sess
    noise = (s**3 * var_m / r[on]).mean()
    f = np.sqrt(max(0.0, 1.0 - noise / var))
    centre = np.average(s, weights=r[on])
    out = share.copy()
    out[on] = centre + f * (s - centre)
    shares = [None if not np.isfinite(v) else float(v) for v in out]
    return {**sess, "start_share": {**by, "share": shares}}
