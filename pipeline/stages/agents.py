"""Agent workloads (when the trace has agent columns): calls per turn and per session, tool and
think gaps between calls, subagent fan-out and depth, context growth and its cached share, output
lengths per call kind, the arrival process of sessions against that of calls, canceled share.

Traces without any agent column get no `agents` area at all (their findings are unchanged).
"""

from __future__ import annotations

from servetrace.findings import Finding
from servetrace.schema import AGENT_COLUMNS
from servetrace.stages import sql
from servetrace.stages.context import Context, fmt, pct

TABLES = ("agent_counts", "agent_gaps", "agent_context", "agent_outputs", "agent_fanout")


def agent_columns(con) -> list[str]:
    """The agent columns of `requests` with at least one value."""
    names = set(con.sql("select * from requests limit 0").pl().columns)  # either engine's connection
    present = [c for c in AGENT_COLUMNS if c in names]
    if not present:
        return []
    counts = con.sql(f"select {', '.join(f'count({c}) as n_{c}' for c in present)} from requests").fetchall()[0]
    return [c for c, n in zip(present, counts) if n]


def _absent(reason: str) -> dict:
    return {"absent": reason}


def _quantiles(s: dict, prefix: str, suffix: str = "") -> dict:
    return {k: s[f"{prefix}_{k}{suffix}"] for k in ("mean", "p50", "p90", "max") if f"{prefix}_{k}{suffix}" in s}


def _gap(s: dict, kind: str) -> dict:
    if not s[f"{kind}_gaps"]:
        return _absent(f"no two consecutive calls of one chain {'in one turn' if kind == 'tool' else 'across turns'}")
    return {"count": s[f"{kind}_gaps"], "p50": s[f"{kind}_gap_p50_s"], "p90": s[f"{kind}_gap_p90_s"],
            "mean": s[f"{kind}_gap_mean_s"], "measured": s["gap_measure"]}


def _arrivals(s: dict) -> dict:
    calls = {"iat_mean_s": s["call_iat_mean_s"], "iat_cv": s["call_iat_cv"]}
    if s["session_starts"] < 2:
        return {"calls": calls, "sessions": _absent("fewer than two sessions")}
    if s["distinct_session_starts"] == 1:
        return {"calls": calls, "sessions": _absent("every session starts at the same instant: the source does "
                                                    "not say when its sessions began")}
    return {"calls": calls, "sessions": {"count": s["session_starts"], "iat_mean_s": s["session_iat_mean_s"],
                                         "iat_cv": s["session_iat_cv"]}}


def _tool_calls(s: dict) -> dict:
    if not s["tool_calls_known"]:
        return _absent("the source records no tool calls")
    auto = (s["auto_continued_calls"] / s["auto_continue_known"] if s["auto_continue_known"]
            else _absent("the source records no auto-continue"))
    return {"calls": s["tool_calls_known"], "per_call": _quantiles(s, "tool_calls"),
            "failure_share": s["tool_failure_share"], "auto_continue_share": auto}


def agents(con, ctx: Context) -> tuple[list[Finding], dict]:
    present = agent_columns(con)
    if not present or not ctx.rows:
        return [], {}
    sql.run_once(con, "stg_agent_calls")
    s = sql.table(con, "agent_stats").row(0, named=True)
    tables = {name: sql.table(con, name) for name in TABLES}
    tables["agent_counts"] = tables["agent_counts"].sort(["unit", "calls"])
    tables["agent_gaps"] = tables["agent_gaps"].sort(["kind", "bin_idx"])
    tables["agent_context"] = tables["agent_context"].sort("step")
    tables["agent_outputs"] = tables["agent_outputs"].sort(["call_kind", "role"])
    tables["agent_fanout"] = tables["agent_fanout"].sort("subagents")
    outputs = {f"{r['call_kind']} / {r['role']}": {k: r[k] for k in ("calls", "mean", "p50", "p90", "p99")}
               for r in tables["agent_outputs"].iter_rows(named=True)}
    sub = _absent("no subagent calls in the trace")
    if s["subagent_calls"]:
        sub = {"calls": s["subagent_calls"], "share_of_calls": s["subagent_calls"] / s["calls"],
               "subagents": s["subagents"], "spawning_turns": s["spawning_turns"],
               "fanout_mean": s["fanout_mean"], "fanout_max": s["fanout_max"], "depth_max": s["depth_max"]}
    values = {
        "columns": present,
        "calls": s["calls"], "sessions": s["sessions"], "turns": s["turns"],
        "calls_per_turn": _quantiles(s, "calls_per_turn") if s["turns"] else _absent("no turn numbers"),
        "calls_per_session": _quantiles(s, "calls_per_session") if s["sessions"] else _absent("no session ids"),
        "tool_gap_s": _gap(s, "tool"),
        "think_gap_s": _gap(s, "think"),
        "tool_time_s": ({"count": s["tool_time_gaps"], "p50": s["tool_time_p50_s"], "mean": s["tool_time_mean_s"],
                         "share_of_tool_gap": s["tool_time_share"]} if s["tool_time_gaps"]
                        else _absent("the source records no tool time")),
        "tool_calls": _tool_calls(s),
        "subagents": sub,
        "context_growth_tokens": {"p50": s["growth_p50"], "mean": s["growth_mean"]},
        "cached_share": s["cached_share"] if s["cached_calls"] else _absent("the source records no cached tokens"),
        "output_tokens": outputs,
        "arrivals": _arrivals(s),
        "canceled_share": (s["canceled_calls"] / s["canceled_known"] if s["canceled_known"]
                           else _absent("the source records no cancellation")),
        "definitions": {
            "chain": "the calls of one agent: a subagent's (parent_id) or the session's own",
            "tool_gap_s": "idle time between consecutive calls of a chain in the same turn",
            "think_gap_s": "idle time between the last call of a turn and the first of the next",
            "tool_time_s": "tool time the source records for the call before a tool gap (Copilot tool_batches), "
                           "and its sum over the sum of those gaps",
            "context_growth_tokens": "input tokens of a call minus those of the chain's previous call",
            "tool_calls": "tools a call asked for (Copilot function_calls of its tool_batches), per call; "
                          "failure_share: failed or timed-out ones over all; auto_continue_share: calls whose "
                          "tools ran after which the agent went on by itself, over those that record it",
        },
    }
    statement = f"{s['sessions']:,} sessions made {s['calls']:,} calls"
    if s["turns"]:
        statement += f", {fmt(s['calls_per_turn_mean'])} per turn on average (p90 {fmt(s['calls_per_turn_p90'])})"
    if s["tool_gaps"]:
        statement += f"; median tool gap {fmt(s['tool_gap_p50_s'])} s"
    if s["tool_time_gaps"] and s["tool_time_share"] is not None:
        statement += f" (tools recorded for {pct(s['tool_time_share'])} of it)"
    if s["tool_calls_known"] and s["tool_failure_share"] is not None:
        statement += f" ({fmt(s['tool_calls_mean'])} tool calls per call, {pct(s['tool_failure_share'])} failed)"
    if s["think_gaps"]:
        statement += f", median think gap {fmt(s['think_gap_p50_s'])} s"
    if s["cached_calls"] and s["cached_share"] is not None:
        statement += f"; {pct(s['cached_share'])} of input tokens cached"
    if s["subagent_calls"]:
        statement += f"; {pct(s['subagent_calls'] / s['calls'])} of calls by subagents"
    return [Finding("agents", values, statement + ".", list(tables))], tables
