"""Sessions: from session ids, or (without them) inferred from prefix chains. Turns per
session, gaps (arrival to arrival) and think times (from the previous turn's end where latency
is known), context growth and new prompt by turn, the session start process."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from servetrace.findings import Absent, Finding
from servetrace.reuse.analysis import Reuse
from servetrace.reuse.chains import session_roots
from servetrace.stages import sql
from servetrace.stages.context import Context, fmt, pct


def register_inferred(con, reuse: Reuse | None) -> bool:
    """`inferred_sessions` (row_id, session_key): filled from prefix chains (numpy's, or the chain
    SQL's `session_keys` where reuse_of made them on the connection), empty otherwise."""
    if reuse is not None and reuse.keyed:
        sql.run_sql(con, "inferred_sessions")
        return True
    if reuse is not None and reuse.parent is not None:
        root = session_roots(reuse.parent)
        frame = pa.table({"row_id": pa.array(np.arange(len(root)), pa.int64()),
                          "session_key": pa.array(root.astype(str))})
    else:
        frame = pa.Table.from_arrays([pa.nulls(0, pa.int64()), pa.nulls(0, pa.string())], ["row_id", "session_key"])
    con.register("inferred_sessions", frame)
    return frame.num_rows > 0


def sessions(con, ctx: Context, reuse: Reuse | None = None) -> tuple[Finding | Absent, dict]:
    explicit = ctx.has("session_id")
    inferred = register_inferred(con, None if explicit else reuse)
    if not explicit and not inferred:
        return Absent("sessions", "no session ids in the trace and no hash_ids to infer them from"), {}
    sql.run_sql(con, "stg_session_turns")
    sql.run_sql(con, "stg_sessions")
    stats = sql.table(con, "session_stats").row(0, named=True)
    tables = {"sessions": sql.table(con, "sessions", order_by="turns"),
              "session_gaps": sql.table(con, "session_gaps", order_by="bin_idx"),
              "session_turns": sql.table(con, "session_turns", order_by="turn")}
    members = int(stats["turns"] or 0)
    values = {**stats, "source": "session ids" if explicit else "inferred from prefix chains",
              "share_of_requests": members / ctx.rows,
              "follow_up_share": (stats["follow_ups"] or 0) / ctx.rows,
              "multi_turn_share": stats["multi_turn_sessions"] / stats["sessions"] if stats["sessions"] else None,
              "gap_basis": "arrival to arrival",
              "think_basis": "previous turn's end (arrival + latency_s) to arrival; only where latency is known"}
    gap = f", median gap between turns {fmt(stats['gap_p50_s'])} s (arrival to arrival)" if stats["gaps"] else \
        ", no session has two turns"
    think = f", median think time {fmt(stats['think_p50_s'])} s (from the previous turn's end)" if stats["thinks"] else ""
    how = "" if explicit else " inferred from prefix chains"
    statement = (f"{stats['sessions']:,} sessions{how} with {fmt(stats['turns_mean'])} turns on average "
                 f"(p90 {fmt(stats['turns_p90'])}, max {stats['turns_max']}){gap}{think}; "
                 f"{pct(values['follow_up_share'])} of requests are follow-ups.")
    return Finding("sessions", values, statement, list(tables)), tables
