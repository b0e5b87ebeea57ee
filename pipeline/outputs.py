"""Every file a servetrace command writes into an output directory DIR, named once.

    DIR/requests.parquet           ingest: the canonical request table, sorted by arrival
    DIR/rejects.parquet            ingest: refused records (source line, reason, record)
    DIR/tables/<table>.parquet     characterize (and validate, provision): chart-ready aggregates
    DIR/findings.json              characterize: one entry per area
    DIR/bundle.json                characterize / fit / a ServeGen import: the workload parameters
    DIR/report.html                characterize / report: the findings report
    DIR/fidelity.json, .html       validate
    DIR/provision.json, .html      provision
    DIR/inputs/{source,synthetic}  validate / provision: raw inputs ingested on the way
"""

from __future__ import annotations

from pathlib import Path

REQUESTS = "requests.parquet"
REJECTS = "rejects.parquet"
TABLES = "tables"
FINDINGS = "findings.json"
BUNDLE = "bundle.json"
REPORT = "report.html"
FIDELITY = "fidelity.json"
FIDELITY_PAGE = "fidelity.html"
FIDELITY_WINDOWS = "fidelity_windows"  # a table in DIR/tables/
PROVISION = "provision.json"
PROVISION_PAGE = "provision.html"
PROVISION_CURVE = "provision_curve"  # a table in DIR/tables/
INPUTS = "inputs"
SPILL = ".spill"  # ingest's scratch directory, removed after the run
LOCK = ".servetrace.lock"
# What another command than characterize leaves in DIR and the report shows when present.
RUN_FILES = {"bundle": BUNDLE, "fidelity": FIDELITY, "provision": PROVISION}


def table_path(out_dir: str | Path, name: str) -> Path:
    """DIR/tables/<name>.parquet."""
    return Path(out_dir) / TABLES / f"{name}.parquet"


def bundle_path(path: str | Path) -> Path:
    """A bundle file, or DIR/bundle.json when `path` is a directory."""
    path = Path(path)
    return path / BUNDLE if path.is_dir() else path
