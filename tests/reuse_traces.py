"""Traces with known block reuse and sessions (ground truth for the reuse and session tests)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from test_stages_support import canonical


def with_blocks(rows: list, ids_at: int, **columns) -> tuple:
    """(canonical table of `rows` (arrival first) with `columns` and hash_ids from each row's
    content keys at `ids_at`, numbered in order of first sight; the rows' arrival order)."""
    keys = {}
    hash_ids = [[keys.setdefault(i, len(keys)) for i in r[ids_at]] for r in rows]
    arrival = np.array([r[0] for r in rows])
    order = np.argsort(arrival, kind="stable")
    table = canonical(arrival, **columns)
    return table.append_column("hash_ids", pa.array([hash_ids[i] for i in order], pa.list_(pa.int64()))), order


def client_table(rows: list, rng, fifth: str) -> tuple:
    """(table, truth) of rows (arrival, client, session, turn, `fifth`, input tokens, content keys)."""
    table, order = with_blocks(rows, 6, client_id=[r[1] for r in rows], input_tokens=np.array([r[5] for r in rows]),
                               output_tokens=rng.integers(1, 50, len(rows)))
    truth = pl.DataFrame({"client": [rows[i][1] for i in order], "session": [rows[i][2] for i in order],
                          "turn": [rows[i][3] for i in order], fifth: [rows[i][4] for i in order]})
    return table, truth


def session_trace(n_sessions: int = 400, block: int = 16, groups: int = 5, seed: int = 0,
                  think_s: float = 30.0, latency_s: float | None = None):
    """Multi-turn sessions, each starting with one of `groups` shared system prompts (Zipf
    popularity, whole blocks) or none; turn t+1's input = turn t's input + output + a new prompt
    (>= one block, so every turn adds a full block). Block ids are content ids: a full block of
    a session's context keeps its id, a partial last block is unique. Returns (table, truth)."""
    rng = np.random.default_rng(seed)
    turns = rng.geometric(0.4, n_sessions)
    start = np.cumsum(rng.exponential(20.0, n_sessions))
    pop = 1 / np.arange(1, groups + 1)
    group = np.where(rng.random(n_sessions) < 0.7, rng.choice(groups, n_sessions, p=pop / pop.sum()), -1)
    sys_blocks = (np.arange(groups) + 2) * 3
    rows = []
    for s in range(n_sessions):  # a test fixture: clarity over speed
        t, ctx = start[s], (sys_blocks[group[s]] * block if group[s] >= 0 else 0)
        for k in range(turns[s]):
            new = int(rng.integers(block, 6 * block))
            inp = ctx + new
            out = int(rng.integers(1, 3 * block))
            full = inp // block
            ids = [("g", int(group[s]), j) if group[s] >= 0 and j < sys_blocks[group[s]] else ("s", s, j)
                   for j in range(full)]
            if inp % block:
                ids.append(("p", s, k))
            lat = latency_s if latency_s is not None else np.nan
            rows.append((t, s, k + 1, inp, out, ids, lat))
            t += (latency_s or 0.0) + rng.exponential(think_s)
            ctx = inp + out
    keys = {}
    hash_ids = [[keys.setdefault(i, len(keys)) for i in r[5]] for r in rows]
    arrival = np.array([r[0] for r in rows])
    order = np.argsort(arrival, kind="stable")
    table = canonical(arrival, input_tokens=np.array([r[3] for r in rows]), output_tokens=np.array([r[4] for r in rows]),
                      latency_s=np.array([r[6] for r in rows]))
    table = table.append_column("hash_ids", pa.array([hash_ids[i] for i in order], pa.list_(pa.int64())))
    truth = pl.DataFrame({"session": [rows[i][1] for i in order], "turn": [rows[i][2] for i in order],
                          "group": group[[rows[i][1] for i in order]]})
    return table, truth


def document_trace(n_sessions: int = 2000, block: int = 16, seed: int = 0):
    """Sessions that return to a document (Mooncake's follow-ups: the same long context, a new
    question, no previous output carried). A document is whole blocks, a question (< one block)
    the request's own last block. A session's turns depend on its first prompt: a short document
    (< 600 tokens) is asked about once, a long one geometric(0.25) times; a quarter of the sessions
    start under one of 3 shared 64-block prefixes with a 1-4 block document and geometric(0.5)
    turns. The gap before turn k + 1 is exponential with mean 80 / k s. Returns (table, truth)
    like `session_trace`, truth with each session's group (-1: none)."""
    rng = np.random.default_rng(seed)
    grouped = rng.random(n_sessions) < 0.25
    doc = np.where(grouped, rng.integers(1, 5, n_sessions),
                   np.ceil(rng.lognormal(7.0, 1.2, n_sessions) / block).astype(int))
    turns = np.where(grouped, rng.geometric(0.5, n_sessions),
                     np.where(doc * block < 600, 1, rng.geometric(0.25, n_sessions)))
    group = np.where(grouped, rng.integers(0, 3, n_sessions), -1)
    start = np.cumsum(rng.exponential(2.0, n_sessions))
    rows = []
    for s in range(n_sessions):  # a test fixture: clarity over speed
        t = start[s]
        pre = 64 if grouped[s] else 0
        for k in range(turns[s]):
            ids = [("g", int(group[s]), j) for j in range(pre)] + [("s", s, j) for j in range(doc[s])] + [("q", s, k)]
            rows.append((t, s, k + 1, (pre + doc[s]) * block + int(rng.integers(1, block)), int(rng.integers(1, 200)), ids))
            t += rng.exponential(80.0 / (k + 1))  # sessions speed up as they go on
    keys = {}
    hash_ids = [[keys.setdefault(i, len(keys)) for i in r[5]] for r in rows]
    arrival = np.array([r[0] for r in rows])
    order = np.argsort(arrival, kind="stable")
    table = canonical(arrival, input_tokens=np.array([r[3] for r in rows]), output_tokens=np.array([r[4] for r in rows]))
    table = table.append_column("hash_ids", pa.array([hash_ids[i] for i in order], pa.list_(pa.int64())))
    truth = pl.DataFrame({"session": [rows[i][1] for i in order], "turn": [rows[i][2] for i in order],
                          "input_tokens": [rows[i][3] for i in order], "group": group[[rows[i][1] for i in order]]})
    return table, truth


CLIENT_PLAN = {"a": (600, 0.8, {0: 0.7, 1: 0.3}), "b": (600, 0.2, {2: 1.0}), "c": (20, 0.5, {0: 0.5, 2: 0.5})}


def client_trace(block: int = 16, seed: int = 0, plan: dict = CLIENT_PLAN):
    """Clients with prefix habits of their own: `plan` client -> (sessions, share of sessions under
    a shared prefix, group popularity); group g's prefix is 4 (g + 2) blocks. A session has 1 or
    2 turns, each adding >= one block of its own. Returns (table, truth: per request client,
    session, turn, group)."""
    rng = np.random.default_rng(seed)
    rows, s = [], 0
    for client, (n, share, pop) in plan.items():
        for _ in range(n):  # a test fixture: clarity over speed
            g = int(rng.choice(list(pop), p=list(pop.values()))) if rng.random() < share else -1
            pre = 4 * (g + 2) if g >= 0 else 0
            t, own = rng.uniform(0, 20_000), 0
            for k in range(int(rng.integers(1, 3))):
                own += int(rng.integers(1, 4))
                ids = [("g", g, j) for j in range(pre)] + [("s", s, j) for j in range(own)] + [("p", s, k)]
                rows.append((t, client, s, k + 1, g, (pre + own) * block + int(rng.integers(1, block)), ids))
                t += rng.exponential(30.0)
            s += 1
    return client_table(rows, rng, "group")


def paced_trace(n_sessions: int = 1500, block: int = 16, rho: float = 0.6, seed: int = 0):
    """Sessions whose pace follows their document: a session's document is lognormal (z its
    normal score) and every gap before its next turn is lognormal with log-gap = 3 + (rho z +
    sqrt(1 - rho^2) e) (a Gaussian copula of correlation `rho` between document and gap). Turns
    are 1 + geometric(0.3), independent of the document; each turn re-sends the document with a
    new question (its own last block). Returns (table, truth: session, turn, first input, gap)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n_sessions)
    doc = np.ceil(np.exp(6.5 + 0.8 * z) / block).astype(int)
    turns = 1 + rng.geometric(0.3, n_sessions)
    start = np.cumsum(rng.exponential(1.0, n_sessions))
    rows = []
    for s in range(n_sessions):  # a test fixture: clarity over speed
        t = start[s]
        for k in range(turns[s]):
            ids = [("s", s, j) for j in range(doc[s])] + [("q", s, k)]
            gap = float(np.exp(3 + rho * z[s] + np.sqrt(1 - rho ** 2) * rng.standard_normal()))
            rows.append((t, s, k + 1, doc[s] * block + int(rng.integers(1, block)), ids))
            t += gap
    table, order = with_blocks(rows, 4, input_tokens=np.array([r[3] for r in rows]),
                               output_tokens=rng.integers(1, 200, len(rows)))
    truth = pl.DataFrame({"session": [rows[i][1] for i in order], "turn": [rows[i][2] for i in order]})
    return table, truth


SESSION_PLAN = {"a": (900, 0.6, 10.0, 20), "b": (500, 0.25, 120.0, 120), "c": (30, 0.4, 40.0, 40)}


def client_session_trace(block: int = 16, seed: int = 0, plan: dict = SESSION_PLAN):
    """Clients with session habits of their own: `plan` client -> (sessions, p, median gap in s,
    document blocks); a session has geometric(p) turns, lognormal gaps (sigma 0.5) around its
    client's median and re-sends a document of about that many blocks with a new question (its
    own last block) each turn. Session starts are uniform over 20,000 s. Returns (table, truth:
    per request client, session, turn, gap before it (NaN at turn 1))."""
    rng = np.random.default_rng(seed)
    rows, s = [], 0
    for client, (n, p, gap, blocks) in plan.items():
        for _ in range(n):  # a test fixture: clarity over speed
            doc = max(1, int(rng.poisson(blocks)))
            t, before = rng.uniform(0, 20_000), np.nan
            for k in range(int(rng.geometric(p))):
                ids = [("s", s, j) for j in range(doc)] + [("q", s, k)]
                rows.append((t, client, s, k + 1, before, doc * block + int(rng.integers(1, block)), ids))
                before = float(gap * np.exp(0.5 * rng.standard_normal()))
                t += before
            s += 1
    return client_table(rows, rng, "gap")


TURN_PMF = np.array([0.35, 0.2, 0.15, 0.1, 0.08, 0.05, 0.04, 0.03])  # turns 1..8: mean 2.82


def _planted_sessions(n_sessions: int, lead_s: float, span_s: float, gap_s: float, seed: int):
    """(table, planted turns, sessions started before 0 with turns in the span) of sessions
    started uniformly on [-lead_s, span_s) with TURN_PMF turns and lognormal gaps (median `gap_s`,
    sigma 0.5); only turns inside [0, span_s) are in the trace."""
    rng = np.random.default_rng(seed)
    turns = rng.choice(np.arange(1, len(TURN_PMF) + 1), n_sessions, p=TURN_PMF)
    session = np.repeat(np.arange(n_sessions), turns)
    first = np.r_[0, np.cumsum(turns)[:-1]]
    gaps = gap_s * np.exp(0.5 * rng.standard_normal(len(session)))
    gaps[first] = rng.uniform(-lead_s, span_s, n_sessions)  # a session's first "gap" is its start
    arrival = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first] - gaps[first], turns)
    keep = (arrival >= 0) & (arrival < span_s)
    under = len(np.unique(session[keep & (np.repeat(gaps[first], turns) < 0)]))
    n = int(keep.sum())
    table = canonical(arrival[keep], session_id=[f"s{s}" for s in session[keep]],
                      input_tokens=rng.integers(100, 2000, n), output_tokens=rng.integers(10, 500, n))
    return table, turns, under


def cut_session_trace(n_sessions: int = 3000, span_s: float = 6000.0, gap_s: float = 600.0, seed: int = 0):
    """Sessions with explicit ids cut by the span's end, as a real trace's are: starts uniform on
    [0, span_s), turns from TURN_PMF, lognormal gaps (median `gap_s`, sigma 0.5) between turns;
    turns past `span_s` are not in the trace. Returns (table, planted turns per session)."""
    return _planted_sessions(n_sessions, 0.0, span_s, gap_s, seed)[:2]


def under_way_trace(n_sessions: int = 6000, lead_s: float = 6000.0, span_s: float = 6000.0, gap_s: float = 600.0,
                    seed: int = 0):
    """A window cut from a running service: sessions as `cut_session_trace`'s, started uniformly
    on [-lead_s, span_s) (0.5 per second at the defaults), so some are under way at the span
    start and show only their later turns. Returns (table, planted turns, sessions under way at
    the start that show a turn)."""
    return _planted_sessions(n_sessions, lead_s, span_s, gap_s, seed)
