"""All file access: atomic writes, JSON, Parquet with metadata, an output-directory lock.

Every output is written to a temporary sibling and renamed into place, so a run killed at any
moment leaves the previous file or none, never half of one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from servetrace.errors import ServetraceError

LOCK_NAME = ".servetrace.lock"
# Parquet metadata key naming the command that wrote a table into DIR/tables/ other than
# characterize (validate, provision): characterize replaces tables/ and keeps those.
WRITTEN_BY = "servetrace.written_by"
_UMASK = os.umask(0)
os.umask(_UMASK)
_HELD_LOCKS: dict[str, int] = {}  # directories this process holds, so nested commands re-enter
# What a killed run leaves behind: atomic_path / atomic_dir temporaries (".NAME.<8 random>[.ext]",
# ".NAME.old.<pid>"), DuckDB scratch directories and the ingest spill directory.
_LEFTOVER = re.compile(r"^\.(?:[^.].*\.[a-z0-9_]{8}(?:\.[A-Za-z0-9]+)?|[^.].*\.old\.\d+|servetrace-duckdb-.+|spill)$")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual file mode
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old.{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def json_value(value: Any, digits: int | None = None) -> Any:
    """A scalar as JSON holds it: numpy scalars and Decimals as Python numbers, NaN / inf as null,
    floats to `digits` significant digits when given. Findings, bundles and every other JSON
    output clean their numbers here."""
    if isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{digits}g}") if digits else value
    if isinstance(value, Path):
        return str(value)
    return value


def json_clean(obj: Any, digits: int | None = None) -> Any:
    """`json_value` over nested dicts (keys as strings), lists, tuples and numpy arrays."""
    if isinstance(obj, dict):
        return {str(k): json_clean(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [json_clean(v, digits) for v in obj]
    return json_value(obj, digits)


def dumps_json(obj: Any) -> str:
    return json.dumps(json_clean(obj), indent=2, sort_keys=False, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = dumps_json(obj)
    with atomic_path(path, ".json") as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ServetraceError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ServetraceError(f"{path}: not valid JSON ({exc})") from None


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path, Path(path).suffix) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_parquet(path: str | os.PathLike, table: pa.Table, metadata: dict[str, str] | None = None) -> Path:
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({k.encode(): str(v).encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    with atomic_path(path, ".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return Path(path)


def parquet_metadata(path: str | os.PathLike) -> dict[str, str]:
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if not k.startswith(b"ARROW")}


def parquet_columns(path: str | os.PathLike) -> list[str]:
    return pq.read_schema(path).names


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _sweep_leftovers(out_dir: Path) -> None:
    """Remove the temporaries of a run that was killed here (only called with the lock held)."""
    for entry in out_dir.iterdir():
        if _LEFTOVER.match(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()


@contextlib.contextmanager
def output_lock(out_dir: str | os.PathLike) -> Iterator[None]:
    """One run at a time per output directory; a second one fails at once with a clear message."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    key = str(out_dir.resolve())
    if key in _HELD_LOCKS:
        yield
        return
    fd = os.open(out_dir / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ServetraceError(f"{out_dir}: another servetrace run is writing this directory") from None
        _HELD_LOCKS[key] = fd
        _sweep_leftovers(out_dir)
        yield
    finally:
        _HELD_LOCKS.pop(key, None)
        os.close(fd)
