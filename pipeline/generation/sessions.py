"""Sessions and shared prefixes over the per-client arrivals (bundle v2 `sessions`, `prefix`).

Session starts are each client's own arrival process (its fitted windows, rates scaled by the
share of requests that start a session, in its model and, over time, per bin of the trace's
`start_share`; shapes and burstiness are kept); each session, from its
client's session model (`session_models`: its own, the other clients' pooled tail, or the trace's), draws
its number of turns, whether it starts under a shared prefix and its first new prompt (jointly,
by class of turns), and a shared prefix group by popularity. Turn k + 1 arrives a
fitted gap (arrival to arrival; a synthetic trace has no service times to add a think time to)
after turn k, on the trace's return clock where the bundle has one (per bin of `start_share`, how
fast sessions come back: generation/session_starts.py). A first turn's input is its group's prefix plus a new prompt (>= 1 token, so no
prefix covers a whole input); a follow-up keeps the previous turn's input as its prefix and adds
the previous output and a new prompt ("append" context model), or the fitted change of input
("growth" model, where the source's turns do not carry the previous output: Mooncake). Turns
past the generated span are not emitted: the span end cuts sessions as the source's did, and the
turns PMF was fitted for that cut (bundle/turns.py).

Block ids (`hash_ids`, `block_size` tokens per block) follow the content: a group's prefix
blocks are the group's, a session's later full blocks keep the id of the turn that wrote them
as long as every later turn keeps them, and a partial last block is the request's own. So equal
prefixes get equal ids and a prefix cache sees the reuse the model says. Loops run over turn
numbers, vectorized across sessions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from servetrace.bundle.sessions import class_scores, gap_quarter
from servetrace.generation.arrivals import Arrivals, WindowParams
from servetrace.generation.lengths import LengthSampler
from servetrace.generation.modulation import ModulatedArrivals
from servetrace.generation.options import Timeline
from servetrace.generation.session_clients import assign_groups, client_factor, group_labels, session_models
from servetrace.generation.session_starts import on_clock, return_clock, start_timeline

GROUP_BIT = np.int64(1) << np.int64(62)
MAX_TURNS = 4095


@dataclass
class SessionRequests:
    client: np.ndarray
    window: np.ndarray
    arrival_s: np.ndarray
    session: np.ndarray
    turn: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    offsets: np.ndarray  # hash_ids list offsets (None without a block size)
    ids: np.ndarray
    slot: np.ndarray  # row of `output_of`'s draw each request took its output from
    partials: int = 0  # partial last blocks numbered (the next expand numbers on from there)


def _quantile_draw(rng, q: dict, n: int) -> np.ndarray:
    return np.interp(rng.random(n), np.asarray(q["probs"]), np.asarray(q["quantiles"], dtype=float))


def context_model(sess: dict) -> str:
    """'append' when the source's follow-ups carry the previous input and output (new prompts
    >= 0 for 90 % of them, i.e. quantile 0.1 >= 1 after clipping at 1), else 'growth'."""
    q = sess.get("new_prompt_tokens")
    g = sess.get("growth_tokens")
    if q is None or g is None:
        return "append"
    return "append" if np.interp(0.1, q["probs"], q["quantiles"]) > 1 else "growth"


def owner_of(pre: dict, group: np.ndarray, token: np.ndarray) -> np.ndarray:
    """The group owning `token` of `group`'s prefix (its `owners` runs; the group itself without them)."""
    owners = pre["groups"].get("owners")
    out = group.astype(np.int64).copy()
    if not owners:
        return out
    starts = [np.array([r[0] for r in runs] or [0]) for runs in owners]
    owner = [np.array([r[1] for r in runs] or [gi]) for gi, runs in enumerate(owners)]
    for gi in np.unique(group[group >= 0]):  # a loop over groups
        at = np.flatnonzero(group == gi)
        out[at] = owner[gi][np.clip(np.searchsorted(starts[gi], token[at], side="right") - 1, 0, None)]
    return out


def _strata(rng, n: int) -> np.ndarray:
    """n uniforms, one in each of n equal strata, in random order: a quantile draw that keeps the
    distribution with far less spread in a sample's tail (one 24-turn session more or less moves a
    small trace's cache hit by a point)."""
    return (rng.permutation(n) + rng.random(n)) / max(n, 1)


def _cell_draw(rng, q: dict, n: int) -> np.ndarray:
    tokens = np.interp(_strata(rng, n), np.asarray(q["probs"]), np.asarray(q["quantiles"], dtype=float))
    return np.maximum(np.rint(tokens), 1).astype(np.int64)


def first_turns(rng, sess: dict, grouped_share: float, s_n: int,
                factor: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """(turns, first turn's new prompt, starts under a shared prefix, class of turns or None) per
    session. Turns come in the PMF's proportions (largest remainders, shuffled); with the bundle's
    `by_turns`, each class of turns gets its share of grouped sessions and its own new prompts.
    `factor`: per session, its client's grouped share over the trace's (scales the class's)."""
    t = sess["turns"]
    turns = np.asarray(t["values"], dtype=np.int64)[group_labels(rng, np.asarray(t["probs"]), s_n)]
    by = sess.get("by_turns")
    if not by:
        share = grouped_share if factor is None else np.minimum(grouped_share * factor, 1)
        return turns, _cell_draw(rng, sess["first_new_tokens"], s_n), rng.random(s_n) < share, None
    bucket = np.searchsorted(np.asarray(by["turns_from"]), turns, side="right") - 1
    first_new = np.empty(s_n, dtype=np.int64)
    grouped = np.zeros(s_n, dtype=bool)
    for b, share in enumerate(by["grouped_share"]):  # a loop over classes of turns
        at = np.flatnonzero(bucket == b)
        if grouped_share > 0 and factor is not None:
            grouped[at] = rng.random(len(at)) < np.minimum(share * factor[at], 1)
        elif grouped_share > 0:
            raw = share * len(at)
            k = int(raw) + int(rng.random() < raw - int(raw))
            grouped[at] = rng.permutation(len(at)) < k
        for g in (False, True):
            cell = at[grouped[at] == g]
            first_new[cell] = _cell_draw(rng, by["first_new"][b][int(g)], len(cell))
    return turns, first_new, grouped, bucket


def draw_gaps(rng, sess: dict, bucket: np.ndarray | None, turn: int, turns: np.ndarray,
              z: np.ndarray | None = None) -> np.ndarray:
    """Gaps before turn `turn` of sessions of `turns` turns in classes `bucket` (None: the pooled
    gaps), each from its class's gaps at that quarter of the session; `z`: each session's first
    input as a normal score within its class, coupled to the gap by the class's `gap_rho`."""
    by_turns = sess.get("by_turns") or {}
    by = by_turns.get("gap_s")
    if bucket is None or not by:
        return _quantile_draw(rng, sess["gap_s"], len(turns))
    from scipy.special import ndtr

    rho = np.asarray(by_turns.get("gap_rho") or [0.0] * len(by))[bucket]
    e = rng.standard_normal(len(turns))
    u = ndtr(rho * z + np.sqrt(1 - rho ** 2) * e) if z is not None else rng.random(len(turns))
    cell = bucket * 4 + gap_quarter(np.full(len(turns), turn), turns)
    out = np.empty(len(turns))
    for c in np.unique(cell):  # a loop over (class, quarter) cells
        at = np.flatnonzero(cell == c)
        q = by[c // 4][c % 4] or sess["gap_s"]
        out[at] = np.interp(u[at], np.asarray(q["probs"]), np.asarray(q["quantiles"], dtype=float))
    return out


def rank_pair(client: np.ndarray, inp: np.ndarray, drawn_in: np.ndarray | None, slot: np.ndarray) -> np.ndarray:
    """The draws (`slot`) of a turn's requests re-paired so that, within each client, the request
    with the r-th longest session input gets the draw whose own input was r-th: each draw's output
    (and reasoning, images) keeps its rank correlation with the input, which the session model
    sets (Mooncake: Spearman -0.52; drawn apart, about 0)."""
    if drawn_in is None or not len(slot):
        return slot
    cand = np.nan_to_num(drawn_in[slot], nan=0.0)
    out = np.empty_like(slot)
    out[np.lexsort((inp, client))] = slot[np.lexsort((cand, client))]
    return out


def follow_up(rng, sess: dict, mode: str, prev_in: np.ndarray, prev_out: np.ndarray,
              prefix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(input, tokens kept from the previous input) of follow-ups: previous input + output + a new
    prompt ("append"), or the previous input changed by a fitted growth ("growth"), never below
    the shared prefix + 1."""
    if mode == "append":
        new = np.maximum(np.rint(_quantile_draw(rng, sess["new_prompt_tokens"], len(prev_in))), 1).astype(np.int64)
        return prev_in + prev_out + new, prev_in
    growth = np.rint(_quantile_draw(rng, sess["growth_tokens"], len(prev_in))).astype(np.int64)
    inp = np.maximum(prev_in + growth, prefix + 1)
    return inp, np.minimum(prev_in, inp - 1)


def expand(bundle: dict, starts: Arrivals, start_s: float, end_s: float, seed: int, block_size: int | None,
           output_of, client: np.ndarray | None = None, block: int = 0, first_session: int = 0,
           first_partial: int = 0, clock=None) -> SessionRequests:
    """Turns of every session starting in generation block `block`. `output_of(client, window)` ->
    (input tokens or None, output tokens) of one draw per possible turn; each turn's requests take
    the draws of their turn re-paired by input rank (`rank_pair`; row `slot` is each request's).
    `client`: each session's bundle client (for per-client prefix models). Sessions are numbered
    from `first_session`, partial last blocks from `first_partial` (the blocks before this one's)."""
    sess, pre = bundle["sessions"], bundle.get("prefix")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E55, block]))
    s_n = len(starts.arrival_s)
    has_groups = bool(pre and pre["groups"]["tokens"])
    models, key = session_models(sess, client, s_n)
    factor = None
    if has_groups:  # the share each session's model gives its class, against its client's prefix share
        base = np.array([pre["grouped_share"] if m is sess else m["grouped_share"] for m in models])[key]
        factor = client_factor(pre, client, base)
        own = np.array([m is not sess and m is not sess.get("tail") for m in models])[key]
        if factor is not None:  # a client's own session model has its own grouped shares already
            factor = np.where(own, 1.0, factor)
    turns = np.zeros(s_n, dtype=np.int64)
    first_new = np.zeros(s_n, dtype=np.int64)
    grouped = np.zeros(s_n, dtype=bool)
    bucket = np.full(s_n, -1)
    by = np.zeros(len(models), dtype=bool)  # the model has classes of turns
    for i, m in enumerate(models):  # a loop over the session models in use (one without clients)
        at = np.flatnonzero(key == i)
        if not len(at):
            continue
        f = None if factor is None else factor[at]
        share = (pre["grouped_share"] if m is sess else m["grouped_share"]) if has_groups else 0.0
        turns[at], first_new[at], grouped[at], b = first_turns(rng, m, share, len(at), f)
        if b is not None:
            bucket[at], by[i] = b, True
    turns = np.minimum(turns, MAX_TURNS)
    group = np.full(s_n, -1)
    gtok = np.zeros(s_n, dtype=np.int64)
    if has_groups:
        group = assign_groups(rng, pre, grouped, client)
        gtok[grouped] = np.asarray(pre["groups"]["tokens"], dtype=np.int64)[group[grouped]]
    z = np.zeros(s_n)
    for i in np.flatnonzero(by):  # each model's classes scored apart
        at = key == i
        z[at] = class_scores(gtok[at] + first_new[at], bucket[at], gtok[at] + first_new[at], bucket[at])
    # every request's output first (client and window of its session's start), one draw
    slots = np.repeat(np.arange(s_n), turns)
    drawn_in, out_all = output_of(starts.client[slots], starts.window[slots])
    out_all = np.maximum(np.rint(out_all), 1).astype(np.int64)
    slot0 = np.cumsum(turns) - turns
    mode = [context_model(m) for m in models]
    B = block_size
    unit = (pre or {}).get("block_size") or B  # the source's block: the same lengths at any --block-size
    rows = []  # per turn: (session idx, turn, t, input, output, offsets, ids)
    active = np.arange(s_n)
    t = starts.arrival_s.copy()
    prev_in = np.zeros(s_n, dtype=np.int64)
    prev_out = np.zeros(s_n, dtype=np.int64)
    prev_writer, prev_off, prev_owner = None, None, None  # previous turn's block writers and owners
    for k in range(1, int(turns.max(initial=0)) + 1):
        if k > 1:
            active = active[turns[active] >= k]
            for i in np.unique(key[active]):  # a loop over the session models in use
                at = active[key[active] == i]
                t[at] = on_clock(t[at], draw_gaps(rng, models[i], bucket[at] if by[i] else None, k, turns[at], z[at]), clock)
            if end_s > start_s:  # turns past the span are not emitted: its end cuts sessions, as the source's did
                active = active[t[active] < end_s]
        if not len(active):
            break
        a = active
        if k == 1:
            inp = gtok[a] + first_new[a]
            kept = np.zeros(len(a), dtype=np.int64)
        else:
            inp, kept = np.empty(len(a), dtype=np.int64), np.empty(len(a), dtype=np.int64)
            for i in np.unique(key[a]):  # a loop over the session models in use
                j = np.flatnonzero(key[a] == i)
                inp[j], kept[j] = follow_up(rng, models[i], mode[i], prev_in[a[j]], prev_out[a[j]], gtok[a[j]])
        if unit:  # never a whole number of blocks: a last block of its own, so no input is all
            inp = inp + (inp % unit == 0)  # cached
        slot = rank_pair(starts.client[a], inp, drawn_in, slot0[a] + k - 1)
        out = out_all[slot]
        offsets = ids = writer = None
        if B:
            nb = -(-inp // B)
            offsets = np.r_[0, np.cumsum(nb)]
            req = np.repeat(np.arange(len(a)), nb)
            j = np.arange(offsets[-1]) - offsets[:-1][req]
            kept_blocks = (kept // B)[req]
            if k == 1:
                writer = np.where(j < (gtok[a] // B)[req], 0, 1)
                gowner = owner_of(pre, group[a][req], (j + 1) * B - 1) if pre else None
            else:
                inherit = j < kept_blocks
                src = prev_off[a][req] + j
                writer = np.where(inherit, prev_writer[np.where(inherit, src, 0)], k)
            full = j < (inp // B)[req]
            sid = a[req].astype(np.int64) + first_session
            if k > 1:
                gowner = np.where(inherit, prev_owner[np.where(inherit, src, 0)], -1) if pre else None
            owner = gowner if gowner is not None else group[a][req]
            ids = np.where(writer == 0, GROUP_BIT | (owner.astype(np.int64) << 20) | j,
                           (sid << 32) | (writer.astype(np.int64) << 20) | j)
            ids = np.where(full, ids, -1)  # partial last blocks: numbered after the loop
            # this turn's writers, addressable by session for the next turn
            pw_off = np.zeros(s_n, dtype=np.int64)
            pw_off[a] = offsets[:-1]
            prev_writer, prev_off, prev_owner = writer, pw_off, owner
        rows.append((a, np.full(len(a), k), t[a].copy(), inp, out, offsets, ids, slot))
        prev_in[a], prev_out[a] = inp, out
    if not rows:
        e = np.zeros(0, dtype=np.int64)
        return SessionRequests(e, e, e.astype(float), e, e, e, e, np.zeros(1, np.int64) if B else None,
                               e if B else None, e)
    sess_i = np.concatenate([r[0] for r in rows])
    at = np.concatenate([r[2] for r in rows])
    cat = lambda i: np.concatenate([r[i] for r in rows])
    offsets = ids = None
    partials = 0
    if B:
        lens = np.concatenate([np.diff(r[5]) for r in rows])
        offsets = np.r_[0, np.cumsum(lens)]
        ids = cat(6)
        partial = ids < 0
        partials = int(partial.sum())
        ids[partial] = (np.int64(1) << np.int64(61)) + first_partial + np.arange(partials)  # own, unique
    inp, out, slot = cat(3), cat(4), cat(7)
    if drawn_in is not None and "append" not in mode:  # no input carries an output: pair every turn at once
        slot = rank_pair(starts.client[sess_i], inp, drawn_in, slot)
        out = out_all[slot]
    return SessionRequests(starts.client[sess_i], starts.window[sess_i], at, sess_i + first_session, cat(1), inp,
                           out, offsets, ids, slot, partials)


def session_blocks(bundle: dict, options, chosen: list[int], params: WindowParams, plan, model: str = "renewal") -> Iterator[tuple]:
    """Per generation block (`plan`, in time order): (arrivals, canonical lengths, session
    requests, block) of the sessions starting in it (their starts in arrival model `model`), every
    turn inside the span included (turns cross blocks): the caller merges the blocks by arrival. Memory: one
    block's sessions."""
    from servetrace.generation.compose import canonical_lengths

    sess, tl = bundle["sessions"], plan.timeline
    models, key = session_models(sess, np.asarray(chosen, dtype=np.int64), len(chosen))
    # per chosen client, its model's sessions per request of its clients (the trace's: 1 - follow-up share)
    share = np.array([float(m.get("starts_per_request", 1.0 - m["follow_up_share"])) for m in models])[key]
    process = ModulatedArrivals(bundle, chosen, WindowParams(params.rate * share[:, None], params.family, params.shape),
                                options.seed, model)
    reachable = np.zeros_like(params.rate, dtype=bool)
    reachable[:, np.unique(tl.window)] = True
    lengths = LengthSampler(bundle, chosen, reachable & (params.rate > 0))
    block_size = options.block_size or (bundle.get("prefix") or {}).get("block_size")
    start_s, end_s = float(tl.begin_s[0]), float(tl.end_s[-1])
    sessions = partials = 0
    clock = return_clock(bundle)
    for lo, hi, block in plan.bounds:
        part = Timeline(tl.begin_s[lo:hi], tl.end_s[lo:hi], tl.window[lo:hi], tl.factor[lo:hi])
        starts = process.block(start_timeline(sess, part), block)
        drawn = {}

        def output_of(client, window, block=block):
            by_client = np.argsort(client, kind="stable")  # the sampler wants each client contiguous
            fields = lengths.sample(client[by_client], window[by_client], options.seed, block)
            back = np.empty_like(by_client)
            back[by_client] = np.arange(len(by_client))
            drawn.update({k: v[back] for k, v in canonical_lengths(fields).items() if v is not None})
            return drawn.get("input_tokens"), drawn["output_tokens"]

        sr = expand(bundle, starts, start_s, end_s, options.seed, block_size, output_of,
                    np.asarray(chosen, dtype=np.int64)[starts.client], block, sessions, partials, clock)
        sessions, partials = sessions + len(starts.arrival_s), partials + sr.partials
        got = {k: v[sr.slot] for k, v in drawn.items()}
        got["input_tokens"] = sr.input_tokens.astype(float)
        got["output_tokens"] = sr.output_tokens.astype(float)
        got = {k: got.get(k) for k in ("input_tokens", "output_tokens", "reason_tokens", "image_count", "image_tokens")}
        yield Arrivals(sr.client, sr.arrival_s, sr.window, starts.pool_exhausted), got, sr, block


def session_columns(sr: SessionRequests, order: np.ndarray) -> dict:
    """`session_id` ("s<number>") and, with a block size, `hash_ids` in the table's row order."""
    import pyarrow as pa

    cols = {"session_id": pa.array(np.char.add("s", sr.session[order].astype(str)))}
    if sr.offsets is not None:
        lens = np.diff(sr.offsets)[order]
        starts = sr.offsets[:-1][order]
        idx = np.repeat(starts - np.r_[0, np.cumsum(lens)[:-1]], lens) + np.arange(int(lens.sum()))
        cols["hash_ids"] = pa.ListArray.from_arrays(pa.array(np.r_[0, np.cumsum(lens)], pa.int32()),
                                                    pa.array(sr.ids[idx], pa.int64()))
    return cols
