"""Typed findings and the findings.json document (schema servetrace.findings/v1).

Each area of the characterization yields one Finding: its numbers (the contract keys), a
one-sentence statement a person can read, and the tables that are its evidence. An area the data
cannot support is `{"absent": "<reason>"}`; so is a single key inside an area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from servetrace.io import json_clean

SCHEMA = "servetrace.findings/v1"
AREAS = ("trace", "quality", "arrivals", "clients", "lengths", "failures", "diurnal", "periodicity",
         "sessions", "reasoning", "multimodal", "prefix")
# Keys each present area must carry (the published contract; more keys are allowed).
REQUIRED = {
    "trace": ("rows_read", "rows_kept", "rows_rejected", "span_s", "format", "sha256"),
    "arrivals": ("rate_rps", "iat_cv", "idc", "best_fit", "peak_to_mean"),
    "clients": ("group_by", "count", "top_share", "gini"),
    "lengths": ("input", "output", "correlation"),
    "failures": ("rate",),
    "diurnal": ("peak_hour", "peak_to_trough"),
}
SIGNIFICANT = 10  # digits kept: parallel sums differ in the last bits; findings must not


@dataclass
class Finding:
    area: str
    values: dict[str, Any]
    statement: str
    evidence: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**self.values, "statement": self.statement, "evidence": list(self.evidence)}


@dataclass
class Absent:
    area: str
    reason: str

    def to_dict(self) -> dict:
        return absent(self.reason)


def absent(reason: str) -> dict:
    return {"absent": reason}


def rounded(obj: Any) -> Any:
    """Floats to SIGNIFICANT digits, NaN / inf to None, numpy scalars to Python, recursively."""
    return json_clean(obj, SIGNIFICANT)


def assemble(findings: list[Finding | Absent], settings: dict, created_at: str | None = None) -> dict:
    """The findings.json document: schema, creation time, settings, then one entry per area."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "created_at": created_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "settings": settings,
    }
    by_area = {f.area: f for f in findings}
    for area in AREAS:
        f = by_area.get(area)
        doc[area] = rounded(f.to_dict()) if f is not None else absent("not computed")
    for area, f in by_area.items():
        if area not in doc:
            doc[area] = rounded(f.to_dict())
    validate(doc)
    return doc


def validate(doc: dict) -> None:
    """Raise ValueError when the document breaks the contract (a bug, not a user error)."""
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"findings: schema must be {SCHEMA}")
    for area in AREAS:
        entry = doc.get(area)
        if not isinstance(entry, dict):
            raise ValueError(f"findings: {area} missing")
        if "absent" in entry:
            if not isinstance(entry["absent"], str) or not entry["absent"]:
                raise ValueError(f"findings: {area}.absent must be a reason")
            continue
        missing = [k for k in REQUIRED.get(area, ()) if k not in entry]
        if missing:
            raise ValueError(f"findings: {area} lacks {', '.join(missing)}")
        if not isinstance(entry.get("statement"), str) or not entry["statement"]:
            raise ValueError(f"findings: {area} has no statement")
    _check_numbers(doc, "findings")


def _check_numbers(obj: Any, where: str) -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{where}: not a finite number")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_numbers(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_numbers(v, f"{where}[{i}]")
