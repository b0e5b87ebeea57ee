"""The modules a characterize imports late (scipy.special, scipy.optimize, jinja2), imported on a
thread of their own while other work waits on DuckDB, so their import is not paid on the critical
path: during the ingest for a small input, during the fit's second pass (after the row stream's
peak RSS) for a large one."""

from __future__ import annotations

import contextlib
import importlib
import threading
from pathlib import Path
from typing import Iterator

# Above this many bytes of input the ingest keeps both cores busy on its own: importing beside it gains
# little and holds the imported modules (~35 MB) under the row stream's peak RSS; they are imported
# during the fit's second pass instead (characterization._fitted).
MAX_BYTES = 64 * 2**20
MODULES = ("scipy.special", "scipy.optimize", "jinja2")


def thread(trace: str | Path | None = None) -> threading.Thread | None:
    """The thread that imports MODULES; given the input `trace`, only for a small one (one file
    under MAX_BYTES), None for a large one, a directory or a pattern."""
    if trace is not None:
        try:
            if not (Path(trace).stat().st_size < MAX_BYTES and Path(trace).is_file()):
                return None
        except (OSError, ValueError):
            return None
    return threading.Thread(target=import_modules, name="servetrace-imports", daemon=True)


def import_modules() -> None:
    """What the stages' statistics (scipy.special: ~0.1 s), the bundle's arrival model
    (scipy.optimize: ~0.2 s) and the report (jinja2: ~0.03 s) import. Third-party packages only,
    which never import ours."""
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the import where it is used reports it
            pass


@contextlib.contextmanager
def joined(worker: threading.Thread | None) -> Iterator[None]:
    """`worker` started, and joined when the block ends (nothing when None)."""
    if worker is None:
        yield
        return
    worker.start()
    try:
        yield
    finally:
        worker.join()
