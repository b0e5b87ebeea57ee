"""A figure of the report: a Vega-Lite chart, or the reason it is not drawn. Helpers shared by the charts.

Charts read tables/ as the stages wrote them; they reshape (select, rename, thin, cumulate for a
Lorenz curve) but compute no statistics of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from servetrace.report import specs as vl

# Beyond this many marks a chart is thinned: the page must stay light for a 10 M-row trace.
MAX_POINTS = 2000
WIDTH, HEIGHT = 380, 220


@dataclass
class Figure:
    """One chart: a Vega-Lite spec, or `missing` saying why it is not in this report."""

    key: str
    title: str
    caption: str = ""
    spec: dict | None = None
    missing: str | None = None
    chart: Any = None  # the spec as built (its data still frames), kept for side-by-side composition

    @classmethod
    def of(cls, key: str, title: str, chart: dict, caption: str = "") -> "Figure":
        # tests/test_report.py checks every spec against the Vega-Lite schema
        return cls(key, title, caption, spec=vl.top_level(chart), chart=chart)

    @classmethod
    def absent(cls, key: str, title: str, reason: str) -> "Figure":
        return cls(key, title, missing=reason)


def anchor(text: str) -> str:
    """An id safe in HTML attributes and URLs."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def table_with(inp, name: str, columns: tuple[str, ...]):
    """(frame, columns) of the stage table `name` when it has rows and every one of `columns` (the
    names the stages write: nothing is guessed), else (None, why it is not drawn)."""
    df = inp.table(name)
    if df is None:
        return None, f"no {name} table"
    if not df.height or any(c not in df.columns for c in columns):
        return None, f"{name} has no rows with {', '.join(columns)}"
    return df, list(columns)


def thin(df: pl.DataFrame, n: int = MAX_POINTS) -> pl.DataFrame:
    """Every k-th row so at most `n` remain (order kept: series stay series)."""
    if df.height <= n:
        return df
    step = -(-df.height // n)
    kept = df.gather_every(step)
    return kept if (df.height - 1) % step == 0 else pl.concat([kept, df.tail(1)])  # the last row ends a curve


def series(df: pl.DataFrame, n: int = MAX_POINTS) -> pl.DataFrame:
    """A long series averaged over runs of consecutive rows so at most `n` remain (numeric columns)."""
    if df.height <= n:
        return df
    step = -(-df.height // n)
    return (df.with_row_index("_row").group_by(pl.col("_row") // step, maintain_order=True)
            .agg(pl.col(c).mean() for c in df.columns).drop("_row"))


def group_label(group_by: str | None = None) -> pl.Expr:
    """'model: GPT-4', 'client_id 35': a table's `level` named with its `dimension` (the grouping for 'group')."""
    level = pl.col("level").cast(pl.String).fill_null("(none)")
    dim = pl.col("dimension").cast(pl.String)
    return pl.when(dim == "group").then(pl.lit(f"{group_by or 'group'} ") + level).otherwise(dim + ": " + level)


def top_rows(df: pl.DataFrame, by: str, n: int = MAX_POINTS) -> pl.DataFrame:
    return df if df.height <= n else df.sort(by, descending=True, nulls_last=True).head(n)


def time_axis(df: pl.DataFrame, seconds_col: str) -> tuple[pl.DataFrame, str]:
    """Seconds since the origin shown in hours or days, whichever reads better for the span."""
    span = (df[seconds_col].max() or 0) - (df[seconds_col].min() or 0)
    unit, size = ("days", 86400.0) if span > 3 * 86400 else ("hours", 3600.0) if span > 3 * 3600 else ("minutes", 60.0)
    title = f"time since trace start ({unit})"
    return df.with_columns((pl.col(seconds_col) / size).alias(title)), title


# Log axes labelled at decades only, as 0.01 or 1e-7: data spanning many decades crowds in-between labels.
DECADE_LABELS = ("abs(log(datum.value) / LN10 - round(log(datum.value) / LN10)) < 1e-6 ? "
                 "(datum.value >= 0.0001 ? format(datum.value, ',~g') : format(datum.value, '.0e')) : ''")


def time_x(title: str) -> dict:
    """The x channel of a series drawn by `time_axis`: plain tick labels (0, 0.5, 1, not 0.0, 0.5, 1.0)."""
    return vl.field(f"{title}:Q", axis={"format": "~g"})


def frame(chart: dict, title: str = "") -> dict:
    return {**chart, "width": WIDTH, "height": HEIGHT, **({"title": title} if title else {})}


def rule_at(value: float, label: str, axis: str = "y", at: str = "start") -> dict:
    """A dashed reference line (Poisson CV = 1, IDC = 1, equality), labelled at its start or end
    (whichever the data leaves free); a vertical line's label belongs in the axis title."""
    base = pl.DataFrame({"v": [value], "label": [label]})
    rule = vl.chart(base, vl.mark("rule", strokeDash=[4, 3], color="#666"), **{axis: "v:Q"})
    if axis != "y":
        return rule
    end = at == "end"
    text = vl.chart(base, vl.mark("text", align="right" if end else "left", dy=-6, color="#555", fontSize=10),
                    y="v:Q", x=vl.value(WIDTH - 4 if end else 4), text="label:N")
    return vl.layer(rule, text)


def log_scale(df: pl.DataFrame, col: str, decades: float = 2.0) -> dict:
    """A log scale when the column spans more than `decades` decades and stays positive, else linear."""
    s = df[col].drop_nulls()
    positive = s.filter(s > 0)
    if positive.len() == s.len() and positive.len() and positive.max() / positive.min() > 10 ** decades:
        return {"type": "log"}
    return {"zero": False}


def positive(df: pl.DataFrame, *cols: str) -> pl.DataFrame:
    """Rows a log axis can show."""
    return df.filter(pl.all_horizontal([pl.col(c) > 0 for c in cols]))
