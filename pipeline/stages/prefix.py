"""Prefix reuse (when hash_ids are present): share of KV-cache blocks seen before, ideal hit rate."""

from __future__ import annotations

from servetrace.findings import Absent, Finding
from servetrace.stages import sql
from servetrace.stages.context import Context, pct


def prefix(con, ctx: Context) -> tuple[Finding | Absent, dict]:
    if not ctx.has_hash_ids:
        return Absent("prefix", "no hash_ids column (KV-cache block hashes) in the trace"), {}
    reuse = sql.table(con, "prefix_reuse", order_by="window_idx")
    blocks = int(reuse["blocks"].sum()) if reuse.height else 0
    if blocks == 0:
        return Absent("prefix", "hash_ids present but empty"), {"prefix_reuse": reuse}
    values = {
        "blocks": blocks,
        "seen_share": int(reuse["seen_blocks"].sum()) / blocks,
        "ideal_hit_rate": int(reuse["prefix_hit_blocks"].sum()) / blocks,
        "definition": "ideal_hit_rate: leading blocks of each request already seen (an infinite prefix cache)",
    }
    statement = (f"{pct(values['seen_share'])} of KV-cache blocks were seen in an earlier request; an infinite "
                 f"prefix cache would hit {pct(values['ideal_hit_rate'])} of blocks.")
    return Finding("prefix", values, statement, ["prefix_reuse"]), {"prefix_reuse": reuse}
