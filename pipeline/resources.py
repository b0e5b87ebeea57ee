"""Where the files that ship beside the code live: `sql/` (the stages) and `reports/` (page templates).

Installed from a wheel they are package data inside `servetrace/`; in the repository (editable
install) they sit at the top level, beside `pipeline/`, as the design card lays them out.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable
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


def user_cache() -> Path:
    """Where what servetrace derives once is kept for later runs (the Vega bundle, the report
    templates' bytecode): $XDG_CACHE_HOME/servetrace, else ~/.cache/servetrace."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "servetrace"


@functools.lru_cache(maxsize=4)
def _validator(text: str) -> Callable:
    import fastjsonschema

    return fastjsonschema.compile(json.loads(text), handlers={}, use_default=False)


def schema_validator(schema: dict) -> Callable:
    """`schema` compiled to Python by fastjsonschema, once per process. The compiled validator is not
    kept between processes: the package itself never loads code from a file it wrote."""
    return _validator(json.dumps(schema, sort_keys=True))


def template_cache():
    """A jinja2 bytecode cache in the user's cache (None where it cannot be made): the report's
    templates are compiled once, not in every process."""
    import jinja2

    folder = user_cache() / "templates"
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        return jinja2.FileSystemBytecodeCache(str(folder))
    return None
