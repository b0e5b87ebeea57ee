"""Ingest's SQL statements, one file each in sql/ingest/. They are templates: Python fills in what
the format decides (columns, paths, options) by name, `{name}`; `{{` and `}}` are literal braces."""

from __future__ import annotations

import functools

from servetrace.resources import SQL_DIR


@functools.lru_cache(maxsize=None)
def _template(name: str) -> str:
    return (SQL_DIR / "ingest" / f"{name}.sql").read_text(encoding="utf-8")


def statement(name: str, **parts) -> str:
    """sql/ingest/NAME.sql with `parts` filled in."""
    return _template(name).format(**parts)
