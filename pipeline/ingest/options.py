"""Turn CLI strings into IngestSettings, refusing what cannot work with a clear message."""

from __future__ import annotations

from servetrace.errors import ServetraceError
from servetrace.schema import COLUMNS
from servetrace.settings import IngestSettings

FORMATS = ("auto", "burstgpt", "azure", "mooncake", "bailian", "copilot", "tracelab", "cc-traces", "baseten",
           "generic", "servegen")
TIME_UNITS = ("auto", "s", "ms", "us", "ns", "datetime")


def ingest_settings(fmt: str, maps: list[str], time_unit: str) -> IngestSettings:
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ServetraceError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if time_unit not in TIME_UNITS:
        raise ServetraceError(f"unknown --time-unit {time_unit!r}; choose one of {', '.join(TIME_UNITS)}")
    mapping: dict[str, str] = {}
    for item in maps:
        src, sep, dst = item.partition("=")
        if not sep or not src or not dst:
            raise ServetraceError(f"--map {item!r}: expected SRC=canonical")
        if dst not in COLUMNS:
            raise ServetraceError(f"--map {item!r}: {dst!r} is not a canonical column ({', '.join(COLUMNS)})")
        if src in mapping:
            raise ServetraceError(f"--map {item!r}: column {src!r} is already mapped to {mapping[src]!r}")
        if dst in mapping.values():
            other = next(k for k, v in mapping.items() if v == dst)
            raise ServetraceError(f"--map {item!r}: {dst!r} is already the target of {other!r}; map one column to it")
        mapping[src] = dst
    return IngestSettings(format=fmt, mapping=mapping, time_unit=time_unit)
