"""Where the files that ship beside the code live: `sql/` (the stages) and `reports/` (page templates).

Installed from a wheel they are package data inside `servetrace/`; in the repository (editable
install) they sit at the top level, beside `pipeline/`, as the design card lays them out.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import marshal
import os
import re
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
    """Where what servetrace derives once is kept for later runs (the Vega bundle, the compiled
    bundle validator, the report templates' bytecode): $XDG_CACHE_HOME/servetrace, else ~/.cache/servetrace."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "servetrace"


def schema_validator(schema: dict) -> Callable:
    """`schema` compiled to Python by fastjsonschema, as `fastjsonschema.compile` makes it. The
    compiled code is kept in the user's cache (marshal, named by a hash of the schema, of
    fastjsonschema's version and of Python's bytecode magic), so a later process loads it instead of
    generating and compiling ~170 kB of Python again; a cache that cannot be read or written only
    costs that time."""
    import fastjsonschema

    from servetrace.errors import ServetraceError
    from servetrace.io import atomic_path

    text = json.dumps(schema, sort_keys=True)
    key = hashlib.sha256(importlib.util.MAGIC_NUMBER + f"{fastjsonschema.VERSION}\0{text}".encode()).hexdigest()[:20]
    path = user_cache() / "validators" / f"schema_{key}.marshal"
    try:
        code = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        source = fastjsonschema.compile_to_code(schema, handlers={}, use_default=False)
        root = re.search(r"^def (\w+)", source, re.M)[1]  # the schema's root: what compile() returns
        code = compile(f"{source}\n\nvalidate = {root}\n", f"<schema {key}>", "exec")
        with contextlib.suppress(OSError, ServetraceError), atomic_path(path) as tmp:
            tmp.write_bytes(marshal.dumps(code))
    namespace: dict = {}
    exec(code, namespace)
    return namespace["validate"]


def template_cache():
    """A jinja2 bytecode cache in the user's cache (None where it cannot be made): the report's
    templates are compiled once, not in every process."""
    import jinja2

    folder = user_cache() / "templates"
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        return jinja2.FileSystemBytecodeCache(str(folder))
    return None
