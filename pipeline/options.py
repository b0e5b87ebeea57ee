"""Every option a user types, checked once, here, before any work: the value, or one clear line.

Numeric options are declared with their range in RANGES and checked by `checked` (the typer
callback of each of them); output paths by `out_path`; the client grouping by `group_by`.
"""

from __future__ import annotations

import math
from pathlib import Path

import typer

# flag: (lowest, highest, lowest allowed itself); seconds, rates and costs kept where a float
# holds them exactly enough and the work they imply can be counted.
RANGES: dict[str, tuple[float, float, bool]] = {
    "--window": (1, 10**8, True),  # seconds: up to ~3 years
    "--duration": (0, 1e10, False),
    "--start": (-1e10, 1e10, True),  # microseconds stay exact in a float64 of this size
    "--rate-scale": (0, 1e9, True),
    "--time-scale": (0, 1e6, False),
    "--rate": (0, 1e9, True),
    "--prefill": (0, 1e6, True),
    "--decode": (0, 1e6, True),
    "--overhead": (0, 1e6, True),
    "--batch": (1, 1e6, True),
    "--quantile": (0, 1, False),
    "--target": (0, 1e9, False),
    "--max-servers": (1, 1e9, True),
    "--seed": (0, 2**63 - 1, True),
    "--block-size": (1, 2**31, True),
}


# Generated rows a single run may ask for; more is refused up front with the expected count.
MAX_GENERATED_ROWS = 2_000_000_000


def check_number(flag: str, value: float | int | None) -> float | int | None:
    if value is None:
        return None
    lo, hi, lo_ok = RANGES[flag]
    if isinstance(value, float) and not math.isfinite(value):
        raise typer.BadParameter(f"{value}: must be a finite number", param_hint=f"'{flag}'")
    if value > hi or value < lo or (value == lo and not lo_ok):
        low = f">= {lo:g}" if lo_ok else f"> {lo:g}"
        raise typer.BadParameter(f"{value}: must be {low} and <= {hi:g}", param_hint=f"'{flag}'")
    return value


def checked(ctx: typer.Context, param: typer.CallbackParam, value):
    """typer callback of every numeric option: its flag names its range in RANGES."""
    return check_number(param.opts[0], value)


def group_by(value: str | None) -> str | None:
    """`--group-by` in the one vocabulary of servetrace.grouping, checked before any work."""
    from servetrace.errors import ServetraceError
    from servetrace.grouping import parse

    if value is None:
        return None
    try:
        parse(value)
    except ServetraceError as exc:
        raise typer.BadParameter(f"{value!r}: {str(exc).split(': ', 1)[-1]}", param_hint="'--group-by'") from None
    return value


def out_path(value: str) -> Path:
    """An output path as typed: never empty, never the root directory."""
    if not value.strip():
        raise typer.BadParameter("empty: give a file or directory to write", param_hint="'--out'")
    if Path(value).resolve() == Path("/"):
        raise typer.BadParameter(f"{value!r}: refusing to write into the root directory", param_hint="'--out'")
    return Path(value)


def expected_rows(flag_text: str, rows: float) -> None:
    """Refuse a generation whose expected size cannot be written, saying the expected count."""
    from servetrace.errors import ServetraceError

    if not math.isfinite(rows) or rows > MAX_GENERATED_ROWS:
        count = f"{rows:.3g}" if math.isfinite(rows) else "unbounded"
        raise ServetraceError(f"{flag_text}: would generate about {count} requests; at most "
                              f"{MAX_GENERATED_ROWS:,} per run (shorten --duration or lower the rate)")


def check_generate_size(bundle: dict, duration_s: float | None, rate_scale: float | None,
                        rate_rps: float | None, rate_fn: tuple | None) -> None:
    """The expected request count of a generation, from the bundle's rates, refused when too large
    (a bundle rate that is not a finite number is refused too)."""
    from servetrace.errors import ServetraceError

    window_s = float(bundle.get("window_s") or 0)
    total = 0.0
    for client in bundle["clients"]:
        for r in client["windows"]["rate_rps"]:
            if r is None or not math.isfinite(float(r)) or float(r) < 0:
                raise ServetraceError(f"bundle: client {client['id']!r} has a window rate {r!r}, not a finite rate >= 0")
            total += float(r) * window_s
    covered = bundle.get("covered")
    span = float(bundle.get("span_s") or 0) or window_s * len(bundle["aggregate"]["window_start_s"])
    mean = total / span if span > 0 else 0.0
    if duration_s is None:
        duration_s = float(covered["end_s"]) - float(covered["start_s"]) if covered else span
    if rate_rps is not None:
        mean = rate_rps
    elif rate_fn:
        mean = max(r for _, r in rate_fn)
    elif rate_scale is not None:
        mean *= rate_scale
    expected_rows(f"{duration_s:g} s at {mean:.3g} requests/s", mean * duration_s)
