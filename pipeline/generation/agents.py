"""Agent sessions from the bundle's agent model (`agents`, pipeline/bundle/agents.py).

Session starts are each client's own arrival process, its window rates times its sessions per
call, with Gamma gaps of its session starts' own CV (generation/agent_clients.py: calls cluster in
sessions, so the calls' window shapes would clump the starts; Poisson where the source does not
tell); a session may start under a shared prefix of the prefix model, and with per-client parts
its calls' clients are drawn by kind. Each session draws its user turns, each turn its
main calls; a turn's first call comes a think gap after the previous call's end, the others a
tool gap after theirs (from the previous arrival where the source records no call durations).
A call's input is the previous one's plus a drawn growth (at a turn's first call or inside a
turn; a negative growth is a compacted context, never below 1 token), its cached tokens a drawn
share of it, its output drawn by its role. A turn spawns subagents with the fitted share, as
many as the fan-out PMF says, each from one of the turn's calls (at the fitted offset after
it), with its own calls, gaps, context and outputs; subagents spawn subagents to the fitted depth.
Columns: `turn`, `request_id` (`s<session>/<step>`; a subagent's calls `<parent_id>/<step>`),
`parent_id` (the spawning call's request_id and `#k` for its k-th subagent), `call_kind`
(main / subagent), `cached_tokens`, `latency_s`, `canceled`, and with a block size `hash_ids`:
a chain's full blocks keep their ids from call to call until its context shrinks, a partial last
block is the call's own. A session's calls past the span stay where they fall (wrapped to the
span's start, as the session model's turns are, a chain would be cut in two with one long gap).

Everything is drawn array-wise: per block of the plan, no loop over sessions or calls (the only
loops are over subagent levels). Segmented running sums and minima give arrivals and contexts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from servetrace.generation.agent_clients import call_clients, group_block_ids, prefix_groups, start_params
from servetrace.generation.arrivals import ArrivalProcess
from servetrace.generation.options import Timeline

STREAM = 0xA9E7
ID_BUDGET = 1 << 24  # block ids per plan block
MIN_BLOCK_ROWS = 4096
MAX_LEVELS = 8
MASK62 = np.uint64((1 << 62) - 1)
BIG = np.int64(1) << np.int64(36)  # segmented minima: segments far apart (contexts stay below 2^36 tokens)


def _qdraw(rng, q: dict | None, n: int, default: float = 0.0) -> np.ndarray:
    if not q or not n:
        return np.full(n, default, dtype=float)
    return np.interp(rng.random(n), np.asarray(q["probs"], float), np.asarray(q["quantiles"], float))


def _pmf_draw(rng, pmf: dict | None, n: int) -> np.ndarray:
    if not pmf or not n:
        return np.ones(n, dtype=np.int64)
    cdf = np.cumsum(np.asarray(pmf["probs"], float))
    at = np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n), side="right"), len(cdf) - 1)
    return np.asarray(pmf["values"], dtype=np.int64)[at]


def _segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(segment of each element, its position in the segment) for segments of `counts` elements."""
    seg = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return seg, np.arange(len(seg)) - first[seg]


def _seg_cumsum(x: np.ndarray, seg: np.ndarray, pos: np.ndarray) -> np.ndarray:
    c = np.cumsum(x)
    base = (c - x)[pos == 0]
    return c - base[seg]


def _contexts(start: np.ndarray, growth: np.ndarray, seg: np.ndarray, pos: np.ndarray,
              floor: np.ndarray | int = 1) -> np.ndarray:
    """Per chain, input_1 = start, input_k = max(input_(k-1) + growth_k, floor) (Lindley's recursion
    from a segmented running sum and its segmented running minimum); `floor` per call, >= 1."""
    s = _seg_cumsum(np.where(pos == 0, start - floor, growth).astype(np.int64), seg, pos)
    low = np.minimum.accumulate(s - seg * BIG) + seg * BIG
    return s - np.minimum(low, 0) + floor


def _mix(*parts: np.ndarray) -> np.ndarray:
    """splitmix64 over the parts, folded: a 62-bit id per element."""
    h = np.zeros(len(parts[0]), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for p in parts:
            z = h ^ np.asarray(p).astype(np.uint64)
            z = z + np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            h = z ^ (z >> np.uint64(31))
    return (h & MASK62).astype(np.int64)


@dataclass
class Calls:
    """One block's calls, chain by chain (a chain's calls contiguous, in step order)."""
    session: np.ndarray  # index of the session in the block
    turn: np.ndarray
    step: np.ndarray  # 0-based position in the chain
    chain: np.ndarray  # chain number in the block (main chains first: their session index)
    level: np.ndarray  # 0 main, 1.. subagent depth
    arrival_s: np.ndarray
    latency_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    cached: np.ndarray | None
    request_id: pa.Array
    parent_id: pa.Array


def _chain_calls(rng, m: dict, n_calls: np.ndarray, t0: np.ndarray, first_gap: np.ndarray | None,
                 kind: str, opens: np.ndarray | None = None, floor: np.ndarray | None = None) -> dict:
    """Timing, context and lengths of chains of `n_calls` calls whose first call arrives at
    `t0` (+ `first_gap`). Main chains (`opens`: the call opens a user turn) take think and tool
    gaps, subagent chains their own gaps. `floor`: per chain, the least input (a shared prefix + 1)."""
    seg, pos = _segments(n_calls)
    n = len(seg)
    first = pos == 0
    latency = _qdraw(rng, m.get("latency_s"), n) if m["gap_measure"] == "from previous end" else np.zeros(n)
    latency = np.maximum(latency, 0)
    if kind == "main":
        gap = np.where(opens, _qdraw(rng, m.get("think_gap_s"), n), _qdraw(rng, m.get("tool_gap_s"), n))
        inputs = m["input_tokens"]
        growth = np.where(opens, _qdraw(rng, inputs.get("main_turn"), n), _qdraw(rng, inputs.get("main_tool"), n))
        start = _qdraw(rng, inputs.get("main_first"), n, 1.0)
        out_q = m["output_tokens"]
        output = np.where(opens, _qdraw(rng, out_q.get("main_opens"), n, 1.0),
                          _qdraw(rng, out_q.get("main_in_turn"), n, 1.0))
    else:
        gap = _qdraw(rng, m.get("subagent_gap_s") or m.get("tool_gap_s"), n)
        inputs = m["input_tokens"]
        growth = _qdraw(rng, inputs.get("subagent_growth") or inputs.get("main_tool"), n)
        start = _qdraw(rng, inputs.get("subagent_first") or inputs.get("main_first"), n, 1.0)
        out_q = m["output_tokens"]
        output = np.where(first, _qdraw(rng, out_q.get("subagent_opens") or out_q.get("main_opens"), n, 1.0),
                          _qdraw(rng, out_q.get("subagent_in_turn") or out_q.get("main_in_turn"), n, 1.0))
    step_gap = np.where(first, 0.0 if first_gap is None else first_gap[seg], np.r_[0.0, latency[:-1]] + np.maximum(gap, 0))
    arrival = t0[seg] + _seg_cumsum(step_gap, seg, pos)
    low = 1 if floor is None else floor[seg]
    inp = _contexts(np.maximum(np.rint(start), low).astype(np.int64), np.rint(growth).astype(np.int64), seg, pos, low)
    cached = None
    ratios = m.get("cached_ratio")
    if ratios:
        pre = "main" if kind == "main" else "subagent"
        r = np.where(first, _qdraw(rng, ratios.get(f"{pre}_first"), n), _qdraw(rng, ratios.get(f"{pre}_later"), n))
        cached = np.clip(np.rint(r * inp), 0, inp).astype(np.int64)
    return {"seg": seg, "pos": pos, "arrival_s": arrival, "latency_s": latency, "input_tokens": inp,
            "output_tokens": np.maximum(np.rint(output), 1).astype(np.int64), "cached": cached}


def _ids(prefix: pa.Array, numbers: np.ndarray, sep: str) -> pa.Array:
    import pyarrow.compute as pc  # here: a bundle without agents never loads it

    return pc.binary_join_element_wise(prefix, pa.array((numbers + 1).astype(np.int64)).cast(pa.string()), sep)


def _spawn(rng, m: dict, calls: Calls, unit: np.ndarray, prob: float, level: int, first_chain: int) -> Calls | None:
    """Subagents of the units (`unit`: per call, its unit: a main turn or a subagent chain): each
    unit spawns with probability `prob`, a fan-out of them from one of its calls, uniformly."""
    sub = m["subagents"]
    counts = np.bincount(unit)
    first_call = np.cumsum(counts) - counts
    spawning = np.flatnonzero((counts > 0) & (rng.random(len(counts)) < prob))
    if not len(spawning):
        return None
    fan = _pmf_draw(rng, sub["fanout"], len(spawning))
    at = first_call[spawning] + np.floor(rng.random(len(spawning)) * counts[spawning]).astype(np.int64)
    spawner = np.repeat(at, fan)  # the spawning call of each subagent
    _, k = _segments(fan)
    n_calls = np.maximum(_pmf_draw(rng, sub["calls"], len(spawner)), 1)
    start = np.maximum(_qdraw(rng, sub.get("start_s"), len(spawner)), 0)
    c = _chain_calls(rng, m, n_calls, calls.arrival_s[spawner] + start, None, "subagent")
    seg, pos = c["seg"], c["pos"]
    parent = _ids(calls.request_id.take(pa.array(spawner)), k, "#")  # the call's k-th subagent: "#k"
    parent_rows = parent.take(pa.array(seg))
    return Calls(calls.session[spawner][seg], calls.turn[spawner][seg], pos, first_chain + seg,
                 np.full(len(seg), level), c["arrival_s"], c["latency_s"], c["input_tokens"], c["output_tokens"],
                 c["cached"], _ids(parent_rows, pos, "/"), parent_rows)


def agent_calls(m: dict, n_sessions: int, start_s: np.ndarray, rng, first_session: int,
                prefix_tokens: np.ndarray | None = None) -> Calls:
    """Every call of `n_sessions` sessions starting at `start_s` (numbered from `first_session`);
    `prefix_tokens`: per session, the shared prefix its main calls hold (0: none)."""
    turns = _pmf_draw(rng, m["turns"], n_sessions)
    per_turn = np.maximum(_pmf_draw(rng, m["calls_per_turn"], int(turns.sum())), 1)
    t_sess, t_no = _segments(turns)
    c_turn, c_k = _segments(per_turn)
    sess_calls = np.bincount(t_sess[c_turn], minlength=n_sessions)
    c = _chain_calls(rng, m, sess_calls, start_s, None, "main", opens=c_k == 0,
                     floor=None if prefix_tokens is None else prefix_tokens + 1)
    session = c["seg"]
    names = pa.array(np.char.add("s", (session + first_session).astype(str)))
    calls = Calls(session, (t_no[c_turn] + 1).astype(np.int64), c["pos"], session, np.zeros(len(session), np.int64),
                  c["arrival_s"], c["latency_s"], c["input_tokens"], c["output_tokens"], c["cached"],
                  _ids(names, c["pos"], "/"), pa.nulls(len(session), pa.string()))
    sub = m.get("subagents")
    if not sub:
        return calls
    parts, unit, prob, chains = [calls], c_turn, sub["spawn_share"], n_sessions
    nested = [1.0 * x for x in sub.get("nested_share") or []]
    for level in range(1, min(int(sub.get("depth_max") or 1), MAX_LEVELS) + 1):  # a loop over levels
        spawned = _spawn(rng, m, parts[-1], unit, prob, level, chains)
        if spawned is None:
            break
        parts.append(spawned)
        unit = spawned.chain - chains
        chains += int(unit.max()) + 1
        prob = nested[level - 1] if level - 1 < len(nested) else 0.0
    return _concat(parts)


def _concat(parts: list[Calls]) -> Calls:
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])
    cached = None if parts[0].cached is None else cat("cached")
    return Calls(cat("session"), cat("turn"), cat("step"), cat("chain"), cat("level"), cat("arrival_s"),
                 cat("latency_s"), cat("input_tokens"), cat("output_tokens"), cached,
                 pa.concat_arrays([p.request_id for p in parts]), pa.concat_arrays([p.parent_id for p in parts]))


def hash_ids(calls: Calls, block_size: int, block: int, first_session: int,
             prefix: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(list offsets, ids) per call: a chain's full blocks are (chain, epoch, position), the epoch
    moving on where its context shrank; a partial last block is the call's own. `prefix`: (prefix
    model, group and prefix tokens per session): a main call's full blocks inside its session's
    shared prefix carry the group's ids."""
    n = len(calls.step)
    shrink = np.r_[False, calls.input_tokens[1:] < calls.input_tokens[:-1]] & (calls.step > 0)
    starts = calls.step == 0
    chain_no = np.cumsum(starts) - 1
    epoch = np.cumsum(shrink)
    epoch = epoch - epoch[np.flatnonzero(starts)][chain_no]
    key = np.where(calls.level == 0, _mix(calls.session + first_session, np.zeros(n)),
                   _mix(np.full(n, block), calls.chain, np.ones(n)))
    full = calls.input_tokens // block_size
    nb = -(-calls.input_tokens // block_size)
    offsets = np.r_[0, np.cumsum(nb)]
    row, j = _segments(nb)
    ids = np.where(j < full[row], _mix(key[row], epoch[row], j),
                   _mix(np.full(len(row), block), np.full(len(row), 2), row))
    if prefix is not None:
        pre, group, tokens = prefix
        shared = np.flatnonzero((calls.level[row] == 0) & (j < (tokens[calls.session] // block_size)[row]))
        if len(shared):
            ids[shared] = group_block_ids(pre, group[calls.session[row[shared]]], j[shared], block_size)
    return offsets, ids


def block_rows(bundle: dict, options, default: int) -> int:
    """Calls per plan block: fewer where each call carries many block ids (long contexts at a small
    block size), so that a block's ids stay about ID_BUDGET."""
    m = bundle.get("agents")
    block_size = options.block_size or (bundle.get("prefix") or {}).get("block_size")
    if not m or not options.sessions or not block_size:
        return default
    mean = lambda q: float(np.mean(q["quantiles"])) if q else 0.0
    inputs = m["input_tokens"]
    calls = float(np.dot(m["turns"]["values"], m["turns"]["probs"]) * np.dot(m["calls_per_turn"]["values"],
                                                                             m["calls_per_turn"]["probs"]))
    tokens = mean(inputs.get("main_first")) + max(calls / 2 * mean(inputs.get("main_tool")), 0)
    return int(np.clip(ID_BUDGET / max(tokens / block_size, 1), MIN_BLOCK_ROWS, default))


def agent_tables(gen, stretch) -> Iterator[pa.Table]:
    """One canonical table per plan block: the sessions starting in it with all their calls."""
    from servetrace.generation.compose import block_table, group_columns
    from servetrace.generation.failures import draw_failures, failure_probabilities

    bundle, options, chosen, params, plan = gen.bundle, gen.options, gen.chosen, gen.params, gen.plan
    m, tl = bundle["agents"], plan.timeline
    process = ArrivalProcess(start_params(m, chosen, params), chosen, options.seed)
    block_size = options.block_size or (bundle.get("prefix") or {}).get("block_size")
    fail_p, groups = failure_probabilities(bundle, chosen), group_columns(bundle, chosen)
    made = sessions = 0
    for lo, hi, block in plan.bounds:
        starts = process.block(Timeline(tl.begin_s[lo:hi], tl.end_s[lo:hi], tl.window[lo:hi], tl.factor[lo:hi]), block)
        rng = np.random.default_rng(np.random.SeedSequence([options.seed, STREAM, block]))
        n = len(starts.arrival_s)
        if not n:
            continue
        group, tokens = prefix_groups(rng, bundle, chosen, starts.client)
        calls = agent_calls(m, n, starts.arrival_s, rng, sessions, tokens)
        t = stretch(calls.arrival_s)
        client = call_clients(rng, m, chosen, starts.client, calls.session, calls.level, calls.chain,
                              calls.step)
        window = starts.window[calls.session]
        failed = draw_failures(fail_p, chosen, client, window, options.seed, block)
        order = np.argsort(t, kind="stable")
        take = pa.array(order)
        sid = pa.array(np.char.add("s", (calls.session[order] + sessions).astype(str)))
        lengths = {"input_tokens": calls.input_tokens.astype(float), "output_tokens": calls.output_tokens.astype(float),
                   "reason_tokens": None, "image_count": None, "image_tokens": None}
        table = block_table(t, client, lengths, failed, groups, bundle, sid)
        extra = {"turn": pa.array(calls.turn[order], pa.int32()), "request_id": calls.request_id.take(take),
                 "parent_id": calls.parent_id.take(take),
                 "call_kind": pa.array(np.where(calls.level[order] > 0, "subagent", "main")),
                 "latency_s": pa.array(calls.latency_s[order]) if m["gap_measure"] == "from previous end" else None,
                 "cached_tokens": None if calls.cached is None else pa.array(calls.cached[order], pa.int32())}
        if m.get("canceled_share") is not None:
            extra["canceled"] = pa.array(rng.random(len(order)) < m["canceled_share"])
        for name, col in extra.items():
            if col is not None:
                table = table.set_column(table.schema.get_field_index(name), name, col.cast(table.schema.field(name).type))
        if block_size:
            offsets, ids = hash_ids(calls, int(block_size), block, sessions,
                                    (bundle["prefix"], group, tokens) if (group >= 0).any() else None)
            lens = np.diff(offsets)[order]
            begin = offsets[:-1][order]
            idx = np.repeat(begin - np.r_[0, np.cumsum(lens)[:-1]], lens) + np.arange(int(lens.sum()))
            table = table.append_column("hash_ids", pa.ListArray.from_arrays(
                pa.array(np.r_[0, np.cumsum(lens)], pa.int32()), pa.array(ids[idx], pa.int64())))
        made, sessions = made + len(order), sessions + n
        gen.summary.update(requests=made, sessions=sessions, pool_exhausted_cells=gen.summary["pool_exhausted_cells"]
                           + starts.pool_exhausted)
        yield table
