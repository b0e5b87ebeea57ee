"""Agent workloads: calls per turn and per session, idle gaps between calls, context per step,
output lengths per call kind (tables agent_counts, agent_gaps, agent_context, agent_outputs)."""

from __future__ import annotations

import polars as pl

from servetrace.report import specs as vl
from servetrace.report.figures import Figure, table_with, frame
from servetrace.report.values import fmt_percent, is_number, lookup

BLUE, RED = "#1f4e79", "#c0504d"


def calls_per_unit(inp) -> Figure:
    key, title = "agent-calls", "Calls per turn and per session"
    df, cols = table_with(inp, "agent_counts", ("unit", "calls", "count"))
    if df is None:
        return Figure.absent(key, title, cols)
    bars = vl.chart(df.select("unit", "calls", "count"), vl.mark("bar", color=BLUE),
                    x=vl.field("calls:Q", title="calls", scale={"type": "log"}),
                    y=vl.field("count:Q", title="turns or sessions"), color=vl.field("unit:N", title=None),
                    tooltip=["unit", "calls", "count"])
    return Figure.of(key, title, frame(bars), "How many model calls a user turn (all its agents) and a whole "
                                             "session made.")


def gaps_between_calls(inp) -> Figure:
    key, title = "agent-gaps", "Idle gaps between calls"
    df, cols = table_with(inp, "agent_gaps", ("kind", "gap_lo_s", "gaps"))
    if df is None:
        return Figure.absent(key, title, cols)
    measure = df["measure"][0] if "measure" in df.columns else "from previous end"
    bars = vl.chart(df.select("kind", "gap_lo_s", "gap_hi_s", "gaps"), vl.mark("rect", stroke="#fff", strokeWidth=0.5),
                    x=vl.field("gap_lo_s:Q", title=f"gap {measure} (s)", scale={"type": "log"}), x2="gap_hi_s:Q",
                    y=vl.field("gaps:Q", title="gaps"), y2=vl.datum(0),
                    color=vl.field("kind:N", title=None, scale={"domain": ["tool", "think"], "range": [BLUE, RED]}),
                    tooltip=["kind", "gap_lo_s", "gap_hi_s", "gaps"])
    return Figure.of(key, title, frame(bars), "Tool gaps: between calls of one agent in the same turn (the agent "
                                             "waits on its tools); think gaps: from a turn's last call to the next turn.")


def context_per_step(inp) -> Figure:
    key, title = "agent-context", "Context per step"
    df, cols = table_with(inp, "agent_context", ("step", "input_p50"))
    if df is None:
        return Figure.absent(key, title, cols)
    line = vl.chart(df.select("step", "input_p50", "input_mean"), vl.mark("line", point=True),
                    transform=[{"fold": ["input_p50", "input_mean"], "as": ["statistic", "tokens"]}],
                    x=vl.field("step:Q", title="call of the agent (step)"), y=vl.field("tokens:Q", title="input tokens"),
                    color=vl.field("statistic:N", title=None))
    caption = "Input tokens of an agent's k-th call (median and mean): the context it resends."
    share = lookup(inp.findings, "agents.cached_share")
    if is_number(share):
        caption += f" {fmt_percent(share)} of all input tokens were served from the prefix cache."
    return Figure.of(key, title, frame(line), caption)


def outputs_by_kind(inp) -> Figure:
    key, title = "agent-outputs", "Output tokens per call kind"
    df, cols = table_with(inp, "agent_outputs", ("call_kind", "p50"))
    if df is None:
        return Figure.absent(key, title, cols)
    shown = df.with_columns((pl.col("call_kind") + " / " + pl.col("role")).alias("kind")).select("kind", "p50", "p90", "calls")
    bars = vl.chart(shown, vl.mark("bar", color=BLUE), y=vl.field("kind:N", title=None),
                    x=vl.field("p50:Q", title="output tokens (median; tick: p90)"), tooltip=["kind", "calls", "p50", "p90"])
    ticks = vl.chart(shown, vl.mark("tick", color=RED, thickness=2), y="kind:N", x="p90:Q")
    return Figure.of(key, title, frame(vl.layer(bars, ticks)), "Output tokens of calls that open a turn and of calls "
                                                      "inside one, by call kind.")
