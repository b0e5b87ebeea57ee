"""Where the files that ship beside the code live: `sql/` (the stages) and `reports/` (page templates).

Installed from a wheel they are package data inside `servetrace/`; in the repository (editable
install) they sit at the top level, beside `pipeline/`, as the design card lays them out.
"""

from __future__ import annotations

import functools
from pathlib import Path

_HERE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The directory `name` ("sql", "reports") as installed, else as laid out in the repository."""
    installed = _HERE / name
    return installed if installed.is_dir() else _HERE.parent / name


SQL_DIR = resource_dir("sql")


@functools.lru_cache(maxsize=None)
def _template(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def statement(name: str, **parts) -> str:
    """sql/NAME.sql, a template, with `parts` filled in: Python fills in what a caller decides
    (columns, paths, conditions) by name, `{name}`; `{{` and `}}` are literal braces."""
    return _template(name).format(**parts)


def fragment(name: str) -> str:
    """sql/NAME.sql, an expression or condition, without its comment lines: one line to splice in."""
    return " ".join(ln.strip() for ln in _template(name).splitlines() if ln.strip() and not ln.lstrip().startswith("--"))
