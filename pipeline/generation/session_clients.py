"""Which model each generated session follows where the bundle has per-client ones: the session
model (`sessions.clients`, `sessions.tail`) and the prefix model's share and groups
(`prefix.clients`). Used by generation/sessions.py."""

from __future__ import annotations

import numpy as np



def group_labels(rng, popularity: np.ndarray, m: int) -> np.ndarray:
    """m group labels in shuffled order, each group's count its popularity x m (largest
    remainders): a group the source saw in two sessions stays shared, where independent draws
    would leave many of the rare groups with one session and nothing to share."""
    raw = popularity * m
    counts = np.floor(raw).astype(np.int64)
    extra = m - int(counts.sum())
    if extra > 0:
        counts[np.argsort(-(raw - counts), kind="stable")[:extra]] += 1
    return rng.permutation(np.repeat(np.arange(len(popularity)), counts))


def client_factor(pre: dict, client: np.ndarray | None, base: np.ndarray | None = None) -> np.ndarray | None:
    """Per session, its client's share of grouped sessions over its session model's (`base`, per
    session; default the trace's): None when no client has a prefix model of its own."""
    models = pre.get("clients")
    if client is None or not models or not any(models):
        return None
    base = np.full(len(client), pre["grouped_share"]) if base is None else base
    own = np.array([m is not None for m in models])[client]
    share = np.array([m["grouped_share"] if m else 0.0 for m in models])[client]
    return np.where(own & (base > 0), share / np.where(base > 0, base, 1), 1.0)


def session_models(sess: dict, client: np.ndarray | None, n: int) -> tuple[list[dict], np.ndarray]:
    """(the session models in use, each session's index into them): a client's own model
    (`sessions.clients`), else the other clients' pooled `tail`, else the trace's."""
    models, key = [sess], np.zeros(n, dtype=np.int64)
    own = sess.get("clients")
    if client is None or not own:
        return models, key
    tail = sess.get("tail")
    slot = np.zeros(len(own), dtype=np.int64)
    if tail:
        models.append(tail)
        slot[:] = 1
    for c, m in enumerate(own):  # a loop over the bundle's clients
        if m:
            models.append(m)
            slot[c] = len(models) - 1
    return models, slot[client]


def assign_groups(rng, pre: dict, grouped: np.ndarray, client: np.ndarray | None) -> np.ndarray:
    """The shared-prefix group of each grouped session (-1 for the others): by its client's
    popularity where the client has a model of its own, else the trace's."""
    group = np.full(len(grouped), -1)
    pooled = np.asarray(pre["groups"]["popularity"])
    models = pre.get("clients") if client is not None else None
    if not models or not any(models):
        group[grouped] = group_labels(rng, pooled, int(grouped.sum()))
        return group
    key = np.where([m is not None for m in models], np.arange(len(models)), -1)[client]
    for k in np.unique(key[grouped]):  # a loop over clients with a model of their own (-1: the others)
        at = np.flatnonzero(grouped & (key == k))
        pop = pooled
        if k >= 0:
            pop = np.zeros(len(pooled))
            pop[models[k]["groups"]] = models[k]["popularity"]
        group[at] = group_labels(rng, pop, len(at))
    return group
