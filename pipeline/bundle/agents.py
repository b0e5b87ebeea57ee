"""The bundle's agent model (`agents`), fitted from a canonical trace with agent columns.

Fitted over `sql/staging/stg_agent_calls.sql` (a call's chain, step, idle gap and its kind), so the
model and the `agents` findings area read the calls the same way. A session is a main chain of
user turns; a turn is one or more calls with tool gaps between them; a turn may spawn subagents,
each a chain of calls of its own, which may spawn subagents in turn. Fields:

- `sessions_per_call`: sessions over calls (session starts run at the clients' rates times this);
  `session_iat_cv`: the CV of the gaps between session starts inside a rate window, each gap over
  its window's mean gap (so rate changes between windows do not count; null under `min_start_gaps` such
  gaps (settings `fit.agents`) or when every session starts at the same instant: starts are then Poisson). Calls cluster
  in sessions, so the calls' own inter-arrival shapes would clump the session starts.
- `turns` (user turns per session) and `calls_per_turn` (main calls per turn): PMFs `values`, `probs`.
- `gap_measure`: "from previous end" (the source records call durations: a gap is the idle time
  from the previous call's end) or "from previous arrival"; `latency_s`: the calls' durations
  (null when not recorded). `think_gap_s` (before a turn's first call), `tool_gap_s` (between a
  turn's calls), `subagent_gap_s` (between a subagent's calls): quantile functions.
- `input_tokens`: `main_first` (a session's first call), `main_turn` (growth over the previous
  call at a turn's first call), `main_tool` (growth inside a turn), `subagent_first`,
  `subagent_growth`; growths may be negative (a context compacted).
- `cached_ratio`: cached / input tokens, `main_first`, `main_later`, `subagent_first`,
  `subagent_later` (null keys where the source records no cached tokens).
- `output_tokens`: `main_opens`, `main_in_turn`, `subagent_opens`, `subagent_in_turn`.
- `canceled_share`: canceled calls over those whose cancellation is recorded (null: unrecorded).
- `clients` (where the bundle's clients are client groups, e.g. `--group-by model`; else absent):
  per bundle client, `sessions_per_call` (sessions it started, by its session's first main call,
  over its calls: a client seen only inside others' sessions starts none), `session_iat_cv` (its
  own starts' CV as above; null: the trace's), and `main` / `subagent`: PMFs (`values`: bundle
  client indices) of the client of a main call after the session's first, and of a subagent (by
  its first call), in the sessions it started (null: none seen).
- `subagents` (null without any): `spawn_share` (main turns that spawn any), `fanout` (PMF of
  subagents per spawning turn), `calls` (PMF of calls per subagent), `start_s` (quantile
  function: a subagent's first call after the latest call of its session before it), `depth_max`
  and `nested_share` (per level from 2: the share of the level above's subagents that spawn).

Quantile functions: `probs` (0, 0.01, ..., 1), `quantiles`, `n`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from servetrace import io
from servetrace.settings import AgentModelSettings
from servetrace.resources import fragment, statement
from servetrace.stages import sql


# the calls' conditions and gap, shared with validation/agents.py (sql/agents/)
GAP, MAIN, SUB = fragment("agents/gap"), fragment("agents/main_call"), fragment("agents/subagent_call")


def _rows(con, query: str) -> list[tuple]:
    return con.sql(query).fetchall()


def _probs(points: int) -> list[float]:
    return np.linspace(0, 1, points).round(10).tolist()


def _qf(con, expr: str, where: str, probs: list[float]) -> dict | None:
    n, q = _rows(con, f"select count({expr}), quantile_cont({expr}, {probs}) from stg_agent_calls "
                      f"where ({where}) and ({expr}) is not null")[0]
    if not n:
        return None
    return {"probs": probs, "quantiles": [float(v) for v in np.maximum.accumulate(np.asarray(q, dtype=float))],
            "n": int(n)}


def _pmf(con, query: str) -> dict | None:
    rows = _rows(con, f"select n, count(*) from ({query}) where n is not null group by n order by n")
    if not rows:
        return None
    counts = np.array([c for _, c in rows], dtype=float)
    return {"values": [int(v) for v, _ in rows], "probs": (counts / counts.sum()).tolist()}


def _subagents(con, probs: list[float]) -> dict | None:
    subs = _rows(con, f"select count(distinct parent_id) from stg_agent_calls where {SUB}")[0][0]
    if not subs:
        return None
    main_turns = _rows(con, f"select count(distinct (session_id, turn)) from stg_agent_calls where {MAIN}")[0][0]
    # each subagent's level: 1 when its spawning call is no subagent's call, else its spawner's + 1
    levels = _rows(con, statement("agents/subagent_levels", sub=SUB))
    per_level = {lv: n for lv, n, _ in levels}
    spawners = {lv: s for lv, _, s in levels}  # distinct spawning subagents of the level's chains
    depth = max(per_level)
    start = _rows(con, statement("agents/subagent_start", sub=SUB, probs=probs))[0]
    return {
        "spawn_share": _rows(con, f"select count(distinct (session_id, turn)) from stg_agent_calls where {SUB}")[0][0]
        / max(main_turns, 1),
        "fanout": _pmf(con, statement("agents/fanout", sub=SUB)),
        "calls": _pmf(con, f"select count(*) as n from stg_agent_calls where {SUB} group by parent_id"),
        "start_s": ({"probs": probs, "quantiles": [float(v) for v in np.maximum.accumulate(np.asarray(start[1], float))],
                     "n": int(start[0])} if start[0] else None),
        "depth_max": int(depth),
        "nested_share": [spawners.get(lv + 1, 0) / per_level[lv] for lv in range(1, depth)],
    }


def has_turns(path: str | Path) -> bool:
    """Whether the table's `turn` and `session_id` columns hold any value, from the Parquet
    statistics (no database is opened for a trace that has none; no statistics: maybe)."""
    metas = io.parquet_footers(path)
    names = [metas[0].schema.column(i).path for i in range(metas[0].num_columns)]
    for col in ("turn", "session_id"):
        if col not in names:
            return False
        i = names.index(col)
        groups = [meta.row_group(g) for meta in metas for g in range(meta.num_row_groups)]
        if not any(g.column(i).statistics is None or not g.column(i).statistics.has_null_count
                   or g.column(i).statistics.null_count < g.num_rows for g in groups):
            return False
    return True


def _client_models(con, index: np.ndarray, n_clients: int, window_s: float, min_gaps: int) -> list[dict]:
    """The model's `clients` (see above) from `index`, each call's bundle client (file order, -1: none)."""
    import pyarrow as pa

    rows = np.flatnonzero(index >= 0)
    con.register("call_clients", pa.table({"row_id": rows.astype(np.int64), "client": index[rows].astype(np.int64)}))
    out = [{"sessions_per_call": 0.0, "session_iat_cv": None, "main": None, "subagent": None} for _ in range(n_clients)]
    for c, calls, sessions, distinct, cv, gaps in _rows(con, statement("agents/client_sessions", main=MAIN,
                                                                     window_s=float(window_s))):
        out[c].update(sessions_per_call=sessions / calls,
                      session_iat_cv=cv if gaps >= min_gaps and distinct > 1 else None)
    kinds: dict = {}
    for kind, owner, c, n in _rows(con, statement("agents/client_kinds", main=MAIN, sub=SUB)):
        kinds.setdefault((kind, owner), []).append((c, n))
    for (kind, owner), pairs in kinds.items():
        counts = np.array([n for _, n in pairs], dtype=float)
        out[owner][kind] = {"values": [int(c) for c, _ in pairs], "probs": (counts / counts.sum()).tolist()}
    con.unregister("call_clients")
    return out


def fit_agent_model(path: str | Path, window_s: float = 600, memory_limit: str | None = None,
                    settings: AgentModelSettings = AgentModelSettings(), clients=None) -> dict:
    """{"agents": model} for a trace whose main calls carry session ids and turns, else {}.
    `clients()`: each call's bundle client and their number (bundle/sessions.py client_index), or
    None when the bundle's clients are not client groups."""
    from servetrace.stages.agents import agent_columns

    probs = _probs(settings.quantile_points)

    if not has_turns(path):
        return {}
    import polars as pl

    if not pl.scan_parquet(io.parquet_parts(path)).select(pl.col("turn").is_not_null().any()).collect().item():
        return {}  # no turns: no agent trace, and no second database opened for it
    with sql.connect(path, memory_limit) as con:
        if "turn" not in agent_columns(con):
            return {}
        sql.run_sql(con, "stg_agent_calls")
        calls, mains, sessions = _rows(con, f"select count(*), count(*) filter (where {MAIN}), "
                                            f"count(distinct session_id) filter (where {MAIN}) from stg_agent_calls")[0]
        # an agent trace: calls name their kind, or a user turn holds several calls (Bailian's
        # turns are one request each: its session and prefix models generate it)
        agentic = _rows(con, statement("agents/agentic", main=MAIN))[0][0]
        if mains < settings.min_calls or not agentic:
            return {}
        measured = _rows(con, "select count(gap_s) > 0 from stg_agent_calls")[0][0]
        starts = _rows(con, statement("agents/session_starts", main=MAIN, window_s=float(window_s)))[0]
        cached = _rows(con, "select count(cached_tokens) from stg_agent_calls")[0][0]
        known, canceled = _rows(con, "select count(canceled), count(*) filter (where canceled) from stg_agent_calls")[0]
        ratio = "cached_tokens::double / nullif(input_tokens, 0)"
        model = {
            "sessions_per_call": sessions / calls,
            "session_iat_cv": starts[0] if starts[1] >= settings.min_start_gaps and starts[2] > 1 else None,
            "turns": _pmf(con, f"select count(distinct turn) as n from stg_agent_calls where {MAIN} group by session_id"),
            "calls_per_turn": _pmf(con, f"select count(*) as n from stg_agent_calls where {MAIN} group by session_id, turn"),
            "gap_measure": "from previous end" if measured else "from previous arrival",
            "latency_s": _qf(con, "latency_s", "true", probs) if measured else None,
            "think_gap_s": _qf(con, GAP, f"{MAIN} and gap_kind = 'think'", probs),
            "tool_gap_s": _qf(con, GAP, f"{MAIN} and gap_kind = 'tool'", probs),
            "subagent_gap_s": _qf(con, GAP, f"{SUB} and step > 1", probs),
            "input_tokens": {
                "main_first": _qf(con, "input_tokens", f"{MAIN} and step = 1", probs),
                "main_turn": _qf(con, "growth_tokens", f"{MAIN} and step > 1 and opens_turn", probs),
                "main_tool": _qf(con, "growth_tokens", f"{MAIN} and step > 1 and not opens_turn", probs),
                "subagent_first": _qf(con, "input_tokens", f"{SUB} and step = 1", probs),
                "subagent_growth": _qf(con, "growth_tokens", f"{SUB} and step > 1", probs),
            },
            "cached_ratio": None if not cached else {
                "main_first": _qf(con, ratio, f"{MAIN} and step = 1", probs),
                "main_later": _qf(con, ratio, f"{MAIN} and step > 1", probs),
                "subagent_first": _qf(con, ratio, f"{SUB} and step = 1", probs),
                "subagent_later": _qf(con, ratio, f"{SUB} and step > 1", probs),
            },
            "output_tokens": {
                "main_opens": _qf(con, "output_tokens", f"{MAIN} and opens_turn", probs),
                "main_in_turn": _qf(con, "output_tokens", f"{MAIN} and not opens_turn", probs),
                "subagent_opens": _qf(con, "output_tokens", f"{SUB} and step = 1", probs),
                "subagent_in_turn": _qf(con, "output_tokens", f"{SUB} and step > 1", probs),
            },
            "canceled_share": canceled / known if known else None,
            "subagents": _subagents(con, probs),
        }
        index = clients() if clients is not None else None
        if index is not None:
            model["clients"] = _client_models(con, index[0], index[1], window_s, settings.min_start_gaps)
    return {"agents": model}
