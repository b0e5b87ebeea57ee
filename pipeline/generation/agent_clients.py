"""Which client starts an agent session, which client makes each of its calls, and which shared
prefix it starts under: the agent model's per-client parts (`agents.clients`,
pipeline/bundle/agents.py) and the prefix model's groups (`prefix`), for generation/agents.py.

- Session starts: per chosen client, its window rates times its own sessions per call, with Gamma
  gaps of its own starts' CV (else the trace's; Poisson where neither is known). Without
  per-client parts every client starts sessions at the trace's sessions per call.
- Calls: a session's first call is its client's; a later main call's client is drawn call by
  call from the PMF of its session's client, a subagent's once for the whole subagent (with `--group-by model` a subagent's calls carry the
  subagent's model). A drawn client that is not generated (not chosen) leaves the session's.
- Prefixes: a session starts under a shared prefix with the prefix model's grouped share (its
  client's where it has its own model), in a group drawn by popularity, as generation/sessions.py
  draws them; its main calls then hold the group's prefix (at least its tokens + 1) and their
  first full blocks carry the group's ids, so sessions of one group share them.
"""

from __future__ import annotations

import numpy as np

from servetrace.generation.arrivals import WindowParams
from servetrace.generation.session_clients import assign_groups, client_factor
from servetrace.generation.sessions import GROUP_BIT, owner_of


def start_params(m: dict, chosen: list[int], params: WindowParams) -> WindowParams:
    """The session-start process of the chosen clients (see above)."""
    pooled_cv = m.get("session_iat_cv") or 1.0
    own = m.get("clients")
    share = np.full(len(chosen), float(m["sessions_per_call"]))
    cv = np.full(len(chosen), float(pooled_cv))
    if own:
        share = np.array([float(own[c]["sessions_per_call"]) for c in chosen])
        cv = np.array([float(own[c]["session_iat_cv"] or pooled_cv) for c in chosen])
    shape = np.clip(1 / np.maximum(cv, 1e-3) ** 2, 0.01, 100.0)
    return WindowParams(params.rate * share[:, None], np.zeros_like(params.family),
                        np.broadcast_to(shape[:, None], params.shape.shape).copy())


def _draw_from(rng, pmfs: list, owner: np.ndarray, row_of: np.ndarray) -> np.ndarray:
    """Per element, a chosen-client row drawn from its owner's PMF (bundle client indices), or the
    owner where the PMF is missing or names a client not generated (row_of -1)."""
    out = owner.copy()
    u = rng.random(len(owner))
    for o in np.unique(owner):  # a loop over the chosen clients in use
        pmf = pmfs[o]
        if not pmf:
            continue
        at = np.flatnonzero(owner == o)
        cdf = np.cumsum(pmf["probs"])
        pick = np.minimum(np.searchsorted(cdf / cdf[-1], u[at], side="right"), len(cdf) - 1)
        row = row_of[np.asarray(pmf["values"], dtype=np.int64)[pick]]
        out[at] = np.where(row >= 0, row, o)
    return out


def call_clients(rng, m: dict, chosen: list[int], session_client: np.ndarray, session: np.ndarray,
                 level: np.ndarray, chain: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Each call's chosen-client row: its session's, or drawn by kind (see above)."""
    client = session_client[session]
    own = m.get("clients")
    if not own:
        return client
    chosen = np.asarray(chosen, dtype=np.int64)
    row_of = np.full(len(own), -1, dtype=np.int64)
    row_of[chosen] = np.arange(len(chosen))
    main = np.flatnonzero((level == 0) & (step > 0))
    client[main] = _draw_from(rng, [own[c]["main"] for c in chosen], client[main], row_of)
    sub = np.flatnonzero(level > 0)
    if len(sub):
        chains, first = np.unique(chain[sub], return_index=True)
        drawn = _draw_from(rng, [own[c]["subagent"] for c in chosen], client[sub][first], row_of)
        client[sub] = drawn[np.searchsorted(chains, chain[sub])]
    return client


def prefix_groups(rng, bundle: dict, chosen: list[int], session_client: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group, prefix tokens) per session: -1 and 0 for a session under no shared prefix."""
    n = len(session_client)
    pre = bundle.get("prefix")
    if not pre or not pre["groups"]["tokens"]:
        return np.full(n, -1), np.zeros(n, dtype=np.int64)
    client = np.asarray(chosen, dtype=np.int64)[session_client]
    factor = client_factor(pre, client)
    share = pre["grouped_share"] * (1.0 if factor is None else factor)
    grouped = rng.random(n) < np.minimum(share, 1.0)
    group = assign_groups(rng, pre, grouped, client)
    tokens = np.where(group >= 0, np.asarray(pre["groups"]["tokens"], dtype=np.int64)[np.maximum(group, 0)], 0)
    return group, tokens


def group_block_ids(pre: dict, group: np.ndarray, j: np.ndarray, block_size: int) -> np.ndarray:
    """The ids of block `j` of `group`'s shared prefix (the owner's where groups share a part), as
    generation/sessions.py numbers them."""
    owner = owner_of(pre, group, (j + 1) * block_size - 1)
    return GROUP_BIT | (owner.astype(np.int64) << 20) | j
