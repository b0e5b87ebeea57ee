"""Outlying arrivals: a few rows far away in time from the rest of the trace (one row at t = 1e9
beside a day of traffic: a typo, a clock reset, a wrong unit). Kept, one such row would make the
trace's span, and every per-window structure, as large as the distance.

A row is outlying when it sits at either end of the trace, beyond a gap longer than both
`gap_spans` times the span of the rows it leaves and `gap_floor_s`, with at most `share` of the
rows (or `few`) on its side of the gap (settings.OutlierSettings). Found from the few smallest and
largest arrivals only: the first and last ones the stream wrote when arrivals never go backwards,
else two top-k reads of the written column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from servetrace.ingest.canonical import lit
from servetrace.ingest.queries import statement
from servetrace.ingest.stream import Ends
from servetrace.settings import OutlierSettings

REASON = "arrival far outside the rest of the trace (an outlying timestamp)"


def _tail_cut(near: np.ndarray, far_end: float, m: int, t: OutlierSettings) -> int:
    """How many of the last values of ascending `near` are outlying, the rest spanning to `far_end`."""
    k = np.arange(1, min(m, len(near) - 1) + 1)
    gap = near[-k] - near[-k - 1]
    ok = gap > np.maximum(t.gap_spans * np.abs(near[-k - 1] - far_end), t.gap_floor_s)
    return int(k[ok].max()) if ok.any() else 0


def ends_needed(rows: int, t: OutlierSettings = OutlierSettings()) -> int | None:
    """How many of the smallest and of the largest arrivals decide the outliers (m + 1 of each are
    read); None: too few rows to judge."""
    m = max(t.few, int(rows * t.share))
    return None if rows - m < t.min_rest else m


def cuts_from_ends(low, high, m: int, t: OutlierSettings = OutlierSettings()) -> tuple[float | None, float | None]:
    """(low, high) cuts from the m + 1 smallest arrivals and the m + 1 largest, both ascending:
    arrivals below low or above high are outlying; None: no outlier on that side."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    top = _tail_cut(high, low[min(m, len(low) - 1)], m, t)
    bottom = _tail_cut(-low[::-1], -high[-top - 1], m, t)
    return (float(low[bottom]) if bottom else None), (float(high[-top - 1]) if top else None)


def outlying_cuts(con, kept: Path, rows: int, t: OutlierSettings = OutlierSettings(),
                  ordered: Ends | None = None) -> tuple[float | None, float | None]:
    """(low, high): arrivals (on the clock of `kept`) below low or above high are outlying; None:
    no outlier on that side. `ordered`: the first and last arrivals `kept` holds in file order,
    when they never go backwards there (then they are its smallest and largest)."""
    m = ends_needed(rows, t)
    if m is None:
        return None, None
    low, high = (ordered.first(m + 1), ordered.last(m + 1)) if ordered is not None else (None, None)
    if low is None or high is None:
        low, high = [np.array([r[0] for r in con.execute(statement("arrival_ends", path=lit(str(kept)), order=order,
                                                                   limit=m + 1)).fetchall()])
                     for order in ("asc", "desc")]
        high = high[::-1]
    return cuts_from_ends(low, high, m, t)
