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

The aggregates are SQL (sql/agents/) run on the connection the fit runs on: the SQL fit's (DuckDB's,
or Spark's, so on Spark only aggregates reach the driver), else a DuckDB database of its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from servetrace import io
from servetrace.settings import AgentModelSettings
from servetrace.resources import fragment, statement
from servetrace.rows import read
from servetrace.stages import sql


# the calls' conditions and gap, shared with validation/agents.py (sql/agents/)
GAP, MAIN, SUB = fragment("agents/gap"), fragment("agents/main_call"), fragment("agents/subagent_call")


def _rows(con, query: str) -> list[tuple]:
    return con.sql(query).fetchall()


def _probs(points: int) -> list[float]:
    return np.linspace(0, 1, points).round(10).tolist()


def _qf(n: int, q, probs: list[float]) -> dict:
    """A quantile function from a count and the quantiles at `probs` (made non-decreasing)."""
    return {"probs": probs, "quantiles": [float(v) for v in np.maximum.accumulate(np.asarray(q, dtype=float))],
            "n": int(n)}


def _quantile_functions(con, probs: list[float]) -> dict[str, dict]:
    """name -> quantile function, for the distributions with any value (agents/quantile_functions.sql)."""
    rows = _rows(con, statement("agents/quantile_functions", gap=GAP, main=MAIN, sub=SUB, probs=probs))
    return {name: _qf(n, q, probs) for name, n, q in rows if n}


def _pmfs(con) -> dict[str, dict]:
    """name -> PMF (`values`, `probs`), for the counted distributions with any value (agents/pmfs.sql)."""
    counted: dict[str, list[tuple[int, int]]] = {}
    for name, n, k in _rows(con, statement("agents/pmfs", main=MAIN, sub=SUB, fanout=statement("agents/fanout", sub=SUB))):
        counted.setdefault(name, []).append((int(n), int(k)))
    out = {}
    for name, pairs in counted.items():
        counts = np.array([k for _, k in pairs], dtype=float)
        out[name] = {"values": [n for n, _ in pairs], "probs": (counts / counts.sum()).tolist()}
    return out


def _subagents(con, counts: dict, pmfs: dict, probs: list[float]) -> dict | None:
    if not counts["subagents"]:
        return None
    # each subagent's level: 1 when its spawning call is no subagent's call, else its spawner's + 1
    levels = [(int(lv), int(n), int(s)) for lv, n, s in _rows(con, statement("agents/subagent_levels", sub=SUB))]
    per_level = {lv: n for lv, n, _ in levels}
    spawners = {lv: s for lv, _, s in levels}  # distinct spawning subagents of the level's chains
    depth = max(per_level)
    start = _rows(con, statement("agents/subagent_start", sub=SUB, probs=probs))[0]
    return {
        "spawn_share": counts["spawning_turns"] / max(counts["main_turns"], 1),
        "fanout": pmfs.get("fanout"),
        "calls": pmfs.get("calls"),
        "start_s": _qf(start[0], start[1], probs) if start[0] else None,
        "depth_max": int(depth),
        "nested_share": [spawners.get(lv + 1, 0) / per_level[lv] for lv in range(1, depth)],
    }


def has_turns(path: str | Path) -> bool:
    """Whether the table's `turn` and `session_id` columns hold any value, from the Parquet
    statistics (no database is opened for a trace that has none; no statistics: maybe)."""
    return {"turn", "session_id"} <= set(io.parquet_columns(path)) and not {"turn", "session_id"} & read.all_null(path)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _client_models(con, clients: tuple[dict[str, int], int, list[str]], window_s: float, min_gaps: int) -> list[dict]:
    """The model's `clients` (see above) from `clients`: (bundle client name -> index, the index of
    a call of no listed client (-1: none), the grouping columns). Each call's client is named by
    SQL where the rows lie (agents/call_clients.sql), so no call's row reaches Python."""
    ids, default, columns = clients
    label = "concat_ws('|', " + ", ".join(f"coalesce(cast(\"{c}\" as varchar), '(none)')" for c in columns) + ")"
    names = ", ".join(f"({_quoted(name)}, {int(i)})" for name, i in ids.items())
    con.execute("create or replace temp view call_clients as "
                + statement("agents/call_clients", label=label, names=names, default=int(default)))
    out = [{"sessions_per_call": 0.0, "session_iat_cv": None, "main": None, "subagent": None} for _ in ids]
    for c, calls, sessions, distinct, cv, gaps in _rows(con, statement("agents/client_sessions", main=MAIN,
                                                                     window_s=float(window_s))):
        out[c].update(sessions_per_call=sessions / calls,
                      session_iat_cv=cv if gaps >= min_gaps and distinct > 1 else None)
    kinds: dict = {}
    for kind, owner, c, n in _rows(con, statement("agents/client_kinds", main=MAIN, sub=SUB)):
        kinds.setdefault((kind, int(owner)), []).append((int(c), n))
    for (kind, owner), pairs in kinds.items():
        counts = np.array([n for _, n in pairs], dtype=float)
        out[owner][kind] = {"values": [c for c, _ in pairs], "probs": (counts / counts.sum()).tolist()}
    con.execute("drop view call_clients")
    return out


def fit_agent_model(path: str | Path, window_s: float = 600, memory_limit: str | None = None,
                    settings: AgentModelSettings = AgentModelSettings(), clients=None, con=None) -> dict:
    """{"agents": model} for a trace whose main calls carry session ids and turns, else {}.
    `clients`: (bundle client name -> index, the index of a call of no listed client, the grouping
    columns): bundle/session_sql.py client_names' answer with the bundle's `group_by` columns, or
    None when the bundle's clients are not client groups. `con`: the fit's connection, with
    `requests` (the SQL fit's, on either engine), where the aggregates are made; None: a DuckDB
    database of its own over `path`."""
    if not has_turns(path):
        return {}
    if con is not None:
        return _model_on(con, window_s, settings, clients)
    import polars as pl

    if not pl.scan_parquet(io.parquet_parts(path)).select(pl.col("turn").is_not_null().any()).collect().item():
        return {}  # no turns: no agent trace, and no second database opened for it
    with sql.connect(path, memory_limit) as own:
        return _model_on(own, window_s, settings, clients)


def _model_on(con, window_s: float, settings: AgentModelSettings, clients) -> dict:
    """The agent model (see above) of `requests` on `con`, by the SQL of sql/agents/."""
    from servetrace.stages.agents import agent_columns

    if "turn" not in agent_columns(con):
        return {}
    sql.run_once(con, "stg_agent_calls")
    row = con.sql(statement("agents/counts", main=MAIN, sub=SUB))
    counts = dict(zip(("calls", "mains", "sessions", "gaps", "cached", "known_canceled", "canceled", "subagents",
                       "named_kinds", "main_turns", "most_turn_calls", "spawning_turns"),
                      (int(v or 0) for v in row.fetchall()[0])))
    # an agent trace: calls name their kind, or a user turn holds several calls (Bailian's turns are
    # one request each: its session and prefix models generate it)
    if counts["mains"] < settings.min_calls or not (counts["named_kinds"] or counts["most_turn_calls"] > 1):
        return {}
    probs = _probs(settings.quantile_points)
    measured = counts["gaps"] > 0
    starts = _rows(con, statement("agents/session_starts", main=MAIN, window_s=float(window_s)))[0]
    qf, pmfs = _quantile_functions(con, probs), _pmfs(con)
    group = lambda prefix, keys: {k: qf.get(f"{prefix}.{k}") for k in keys}
    model = {
        "sessions_per_call": counts["sessions"] / counts["calls"],
        "session_iat_cv": starts[0] if starts[1] >= settings.min_start_gaps and starts[2] > 1 else None,
        "turns": pmfs.get("turns"),
        "calls_per_turn": pmfs.get("calls_per_turn"),
        "gap_measure": "from previous end" if measured else "from previous arrival",
        "latency_s": qf.get("latency_s") if measured else None,
        "think_gap_s": qf.get("think_gap_s"),
        "tool_gap_s": qf.get("tool_gap_s"),
        "subagent_gap_s": qf.get("subagent_gap_s"),
        "input_tokens": group("input_tokens", ("main_first", "main_turn", "main_tool", "subagent_first",
                                               "subagent_growth")),
        "cached_ratio": None if not counts["cached"] else group("cached_ratio", (
            "main_first", "main_later", "subagent_first", "subagent_later")),
        "output_tokens": group("output_tokens", ("main_opens", "main_in_turn", "subagent_opens", "subagent_in_turn")),
        "canceled_share": counts["canceled"] / counts["known_canceled"] if counts["known_canceled"] else None,
        "subagents": _subagents(con, counts, pmfs, probs),
    }
    if clients is not None:
        model["clients"] = _client_models(con, clients, window_s, settings.min_start_gaps)
    return {"agents": model}
