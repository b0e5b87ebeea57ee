"""What every stage needs to know about the trace: bounds, columns present, grouping, resolution."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from servetrace.errors import ServetraceError
from servetrace.grouping import Grouping
from servetrace.settings import Settings


@dataclass(frozen=True)
class Context:
    settings: Settings
    profile: dict
    grouping: Grouping
    meta: dict = field(default_factory=dict)
    has_hash_ids: bool = False
    resolution_s: float | None = None
    jitter_s: float = 0.0

    @property
    def group_by(self) -> str:
        return self.grouping.name

    @property
    def group_by_reason(self) -> str:
        return self.grouping.reason

    @property
    def rows(self) -> int:
        return int(self.profile.get("requests") or 0)

    @property
    def t0_s(self) -> float:
        v = self.profile.get("first_arrival_s")
        return float(v) if v is not None else 0.0

    @property
    def t1_s(self) -> float:
        v = self.profile.get("last_arrival_s")
        return float(v) if v is not None else 0.0

    @property
    def span_s(self) -> float:
        return self.t1_s - self.t0_s

    @property
    def sample_p(self) -> float:
        return min(1.0, self.settings.fit_sample / max(self.rows, 1))

    def has(self, column: str) -> bool:
        return int(self.profile.get(f"{column}_rows") or 0) > 0

    def with_resolution(self, resolution_s: float | None, jitter_s: float) -> "Context":
        return replace(self, resolution_s=resolution_s, jitter_s=jitter_s)


MAX_WINDOWS = 1_000_000  # per-window structures (rates, gaps, the bundle's windows) hold this many at most


def check_span(span_s: float, window_s: float, requests) -> None:
    """Refuse, before any stage, a span holding more windows than the analysis keeps (ingest has
    already set aside outlying timestamps: such a trace is spread thin over a very long time)."""
    windows = span_s / window_s
    if windows > MAX_WINDOWS:
        raise ServetraceError(
            f"{requests}: the trace spans {span_s:.4g} s, {windows:,.0f} windows of {window_s:g} s, more than the "
            f"{MAX_WINDOWS:,} the analysis holds; give --window {math.ceil(span_s / MAX_WINDOWS)} or more, or split "
            "the trace")


def rate_bin_s(span_s: float) -> float:
    """Bin of the rate series: hourly for traces of two days or more, else at most ~2000 bins."""
    if span_s >= 2 * 86400:
        return 3600.0
    for b in (1.0, 10.0, 60.0, 300.0, 600.0, 3600.0):
        if span_s / b <= 2000:
            return b
    return 3600.0


def drift_bin_s(span_s: float, window_s: float) -> float:
    """Periods compared for length drift: days when the trace spans two, else hours, else windows."""
    if span_s >= 2 * 86400:
        return 86400.0
    if span_s >= 2 * 3600:
        return 3600.0
    return float(window_s)


def sql_variables(ctx: Context) -> dict:
    s = ctx.settings
    return {
        "t0_s": ctx.t0_s,
        "t1_s": ctx.t1_s,
        "window_s": float(s.window_s),
        "seed": int(s.seed),
        **ctx.grouping.sql_variables(),
        "jitter_s": float(ctx.jitter_s),
        "idc_scales": [float(x) for x in s.idc_scales_s],
        "sample_p": ctx.sample_p,
        "grid_every": max(1, -(-ctx.rows // s.stages.grid_rows)),
        "per_window_n": s.stages.per_window_n,
        "max_groups": s.stages.max_groups,
        "max_groups_detail": s.stages.max_groups_detail,
        "drift_bins_per_decade": s.stages.drift_bins_per_decade,
        "rate_bin_s": rate_bin_s(ctx.span_s),
        "drift_bin_s": drift_bin_s(ctx.span_s, s.window_s),
        "origin_weekday": origin_weekday(ctx.meta.get("servetrace.origin")),
    }


def origin_weekday(origin: str | None) -> int:
    """Weekday of the trace origin (0 = Monday), or -1 when the source gives no date."""
    if not origin:
        return -1
    from datetime import datetime

    try:
        return datetime.fromisoformat(origin.split()[0].replace("Z", "+00:00")).weekday()
    except ValueError:
        return -1


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for a sentence: 3 significant digits, thousands separated, 'n/a' when missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def pct(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{100 * x:.1f} %"
