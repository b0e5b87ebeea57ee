"""Sessions (when session ids are present): count, turns per session, gaps between turns, length."""

from __future__ import annotations

from servetrace.findings import Absent, Finding
from servetrace.stages import sql
from servetrace.stages.context import Context, fmt


def sessions(con, ctx: Context) -> tuple[Finding | Absent, dict]:
    if not ctx.has("session_id"):
        return Absent("sessions", "no session ids in the trace"), {}
    sql.run_sql(con, "stg_sessions")
    stats = sql.table(con, "session_stats").row(0, named=True)
    tables = {"sessions": sql.table(con, "sessions", order_by="turns"),
              "session_gaps": sql.table(con, "session_gaps", order_by="bin_idx")}
    values = {**stats, "share_of_requests": int(ctx.profile["session_id_rows"]) / ctx.rows,
              "multi_turn_share": stats["multi_turn_sessions"] / stats["sessions"] if stats["sessions"] else None}
    gap = f", median gap between turns {fmt(stats['gap_p50_s'])} s" if stats["gaps"] else ", no session has two turns"
    statement = (f"{stats['sessions']:,} sessions with {fmt(stats['turns_mean'])} turns on average "
                 f"(p90 {fmt(stats['turns_p90'])}, max {stats['turns_max']}){gap}.")
    return Finding("sessions", values, statement, list(tables)), tables
