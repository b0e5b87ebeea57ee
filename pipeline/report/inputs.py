"""The files a report is drawn from, read once at the edge: findings.json, tables/, run outputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from servetrace.errors import ServetraceError
from servetrace.io import TRACE_SHA, parquet_metadata, read_json
from servetrace.outputs import FINDINGS, REQUESTS, RUN_FILES, TABLES



@dataclass
class ReportInputs:
    """What one characterized trace directory holds, loaded on demand."""

    out_dir: Path
    findings: dict[str, Any]
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    name: str | None = None  # how the page names this trace; the source file name by default
    _tables: dict[str, pl.DataFrame | None] = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        source = self.findings.get("trace", {}).get("source")
        return Path(str(source)).name if source else self.out_dir.name

    def table_names(self) -> list[str]:
        folder = self.out_dir / TABLES
        return sorted(p.stem for p in folder.glob("*.parquet")) if folder.is_dir() else []

    def table(self, name: str) -> pl.DataFrame | None:
        """`tables/<name>.parquet` as a DataFrame, or None when the stage did not write it."""
        if name not in self._tables:
            path = self.out_dir / TABLES / f"{name}.parquet"
            try:
                self._tables[name] = pl.read_parquet(path) if path.is_file() else None
            except Exception as exc:  # a corrupt table is a user-visible problem, not a crash
                raise ServetraceError(f"{path}: cannot read table ({type(exc).__name__}: {exc})") from None
        return self._tables[name]


def _one_trace(out_dir: Path, findings: dict) -> None:
    """Refuse a directory whose findings.json, tables/ and requests.parquet describe different
    traces (a run killed between its writes): each names its source's sha256."""
    sha = findings.get("trace", {}).get("sha256")
    if not sha:
        return
    for path in [out_dir / REQUESTS, *sorted((out_dir / TABLES).glob("*.parquet"))]:
        try:
            other = parquet_metadata(path).get(TRACE_SHA) if path.exists() else None
        except Exception:  # noqa: BLE001 - an unreadable table is reported where it is read
            continue
        if other and other != sha:
            raise ServetraceError(
                f"{out_dir}: {path.relative_to(out_dir)} is from another trace than {FINDINGS} (sha256 {other[:12]}... "
                f"vs {sha[:12]}...): a run ended half-way; run `servetrace characterize` again")


def load_inputs(out_dir: str | Path) -> ReportInputs:
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ServetraceError(f"{out_dir}: no such directory (run `servetrace characterize` first)")
    findings_path = out_dir / FINDINGS
    if not findings_path.is_file():
        raise ServetraceError(f"{findings_path}: no findings (run `servetrace characterize` first)")
    findings = read_json(findings_path)
    if not isinstance(findings, dict) or not str(findings.get("schema", "")).startswith("servetrace.findings/"):
        raise ServetraceError(f"{findings_path}: not a servetrace findings file (no servetrace.findings schema)")
    _one_trace(out_dir, findings)
    runs = {}
    for kind, name in RUN_FILES.items():
        path = out_dir / name
        if path.is_file():
            doc = read_json(path)
            if isinstance(doc, dict):
                runs[kind] = doc
    return ReportInputs(out_dir, findings, runs)
