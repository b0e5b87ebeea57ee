"""Ingest's SQL statements, one file each in sql/ingest/ (templates: resources.statement)."""

from __future__ import annotations

from servetrace import resources


def statement(name: str, **parts) -> str:
    """sql/ingest/NAME.sql with `parts` filled in."""
    return resources.statement(f"ingest/{name}", **parts)
