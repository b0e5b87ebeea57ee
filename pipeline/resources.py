"""Where the files that ship beside the code live: `sql/` (the stages) and `reports/` (page templates).

Installed from a wheel they are package data inside `servetrace/`; in the repository (editable
install) they sit at the top level, beside `pipeline/`, as the design card lays them out.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The directory `name` ("sql", "reports") as installed, else as laid out in the repository."""
    installed = _HERE / name
    return installed if installed.is_dir() else _HERE.parent / name


SQL_DIR = resource_dir("sql")
