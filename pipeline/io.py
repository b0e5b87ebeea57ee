"""All file access: atomic writes, JSON, Parquet with metadata, an output-directory lock.

Every output is written to a temporary sibling and renamed into place, so a run killed at any
moment leaves the previous file or none, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from decimal import Decimal
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

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


# Temporaries alive in this process (temporary -> the output it becomes): an interrupted run
# removes them before it exits. Renames onto outputs happen under _COMMIT, which the interrupt
# takes and never gives back, so an output is never half-replaced when the process ends.
_LIVE: dict[Path, Path] = {}
_COMMIT = threading.Lock()
SPECIAL_ROOTS = ("/proc", "/sys", "/dev")
MARKER = ".servetrace-made"  # in a directory atomic_dir made: the names it wrote there


def check_output(path: str | os.PathLike, kind: str) -> Path:
    """Refuse an output path that cannot work, before any work: `kind` is "file" or "dir"."""
    path = Path(path)
    resolved = Path(os.path.abspath(path))
    if str(resolved) == "/" or any(str(resolved) == r or str(resolved).startswith(r + "/") for r in SPECIAL_ROOTS):
        raise ServetraceError(f"{path}: not a place for outputs; give a new or own directory")
    for parent in reversed(resolved.parents):
        if parent.exists() and not parent.is_dir():
            raise ServetraceError(f"{path}: {parent} is not a directory")
    if kind == "file" and path.is_dir():
        raise ServetraceError(f"{path}: is a directory; give a file path")
    if kind == "file" and path.exists() and not path.is_file():
        raise ServetraceError(f"{path}: not a regular file; give a file path")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise ServetraceError(f"{path}: exists and is not a directory")
    existing = next((p for p in [resolved, *resolved.parents] if p.exists()), Path("/"))
    if not os.access(existing, os.W_OK | (os.X_OK if existing.is_dir() else 0)):
        raise ServetraceError(f"{path}: {existing} is not writable")
    return path


def _mkdir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ServetraceError(f"{directory}: a part of this path is a file, not a directory") from None


def _lock_temp(tmp: Path) -> int:
    """Hold an flock on a temporary while it lives: a sweep removes only unlocked ones (a dead run's)."""
    fd = os.open(tmp, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _sweep_siblings(path: Path) -> None:
    """Remove temporaries of `path` that a killed run left beside it (none that a live run holds)."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.[a-z0-9_]{{8}}(?:\.[A-Za-z0-9]+)?$")
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            if not pattern.match(entry.name) or entry in _LIVE:
                continue
            try:
                fd = _lock_temp(entry)
            except OSError:
                continue  # locked: a live run's
            try:
                _remove(entry)
            finally:
                os.close(fd)


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def discard_temporaries() -> None:
    """On interrupt: take the commit lock for good, remove this process's temporaries and the
    debris in the output directories it holds. Never returns the lock: the process is ending."""
    _COMMIT.acquire(timeout=10)
    for tmp in list(_LIVE):
        _remove(tmp)
    for key in list(_HELD_LOCKS):
        with contextlib.suppress(OSError):
            _sweep_leftovers(Path(key))


@contextlib.contextmanager
def _temporary(make: Callable[[], str], target: Path) -> Iterator[Path]:
    """The temporary `make` creates (its path), live and flock-held until the block ends. Made, held
    and registered whole under _COMMIT, which an interrupt takes for good before its sweep."""
    with _COMMIT:
        tmp = Path(make())
        fd = _lock_temp(tmp)
        _LIVE[tmp] = target
    try:
        yield tmp
    finally:
        _LIVE.pop(tmp, None)
        os.close(fd)


def _new(directory: Path, prefix: str, suffix: str | None = None) -> str:
    """A new file (`suffix` given) or directory with the usual mode (tempfile makes 0600 / 0700)."""
    if suffix is None:
        tmp = tempfile.mkdtemp(prefix=prefix, dir=directory)
        os.chmod(tmp, 0o777 & ~_UMASK)
        return tmp
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    os.fchmod(fd, 0o666 & ~_UMASK)
    os.close(fd)
    return tmp


@contextlib.contextmanager
def temporary_dir(directory: str | os.PathLike | None, prefix: str) -> Iterator[Path]:
    """A scratch directory (`prefix` + random, in `directory` or the system's), removed after and by an interrupt."""
    parent = Path(directory) if directory is not None else Path(tempfile.gettempdir())
    with _temporary(lambda: _new(parent, prefix), parent) as tmp:
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = check_output(path, "file")
    _mkdir(path.parent)
    _sweep_siblings(path)
    with _temporary(lambda: _new(path.parent, f".{path.name}.", suffix or ".tmp"), path) as tmp_path:
        try:
            yield tmp_path
            with _COMMIT:
                os.replace(tmp_path, path)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
            _raise_if_no_space(exc, path)
            raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, replace_any: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; it replaces `path` only if the block succeeds.

    A directory is replaced only if it is empty or holds nothing but what an earlier atomic_dir
    wrote there (listed in its MARKER): an output never removes files it did not make.
    `replace_any` is for a directory that is wholly the caller's (tables/ of a locked DIR)."""
    path = check_output(path, "dir")
    _mkdir(path.parent)
    _sweep_siblings(path)
    if not replace_any:
        _refuse_foreign(path)
    with _temporary(lambda: _new(path.parent, f".{path.name}."), path) as tmp:
        try:
            yield tmp
            if not replace_any:
                made = sorted(p.name for p in tmp.iterdir())
                (tmp / MARKER).write_text(json.dumps(made) + "\n", encoding="utf-8")
                _refuse_foreign(path)
            old = None
            with _COMMIT:
                if path.exists():
                    old = path.with_name(f".{path.name}.old.{os.getpid()}")
                    os.replace(path, old)
                os.replace(tmp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            _raise_if_no_space(exc, path)
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
    return value


def no_space(exc: BaseException) -> bool:
    """Whether `exc` says the disk is full (an OSError, or DuckDB / Arrow saying so in words)."""
    return getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc)


def _raise_if_no_space(exc: BaseException, path: Path) -> None:
    if not isinstance(exc, ServetraceError) and no_space(exc):
        mount = Path(os.path.abspath(path)).parent
        while not os.path.ismount(mount):
            mount = mount.parent
        raise ServetraceError(f"no space left on {mount} while writing {path}") from None


@contextlib.contextmanager
def scratch_dir(beside: str | os.PathLike) -> Iterator[Path]:
    """A temporary directory beside the output `beside`, removed after, by an interrupt or the next run's sweep."""
    beside = Path(beside)
    _mkdir(beside.parent)
    with temporary_dir(beside.parent, f".{beside.name}.") as tmp:
        yield tmp


def _refuse_foreign(path: Path) -> None:
    if not path.is_dir():
        return
    try:
        made = set(json.loads((path / MARKER).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        made = set()
    foreign = sorted(p.name for p in path.iterdir() if p.name != MARKER and p.name not in made)
    if foreign:
        raise ServetraceError(f"{path}: holds files servetrace did not write ({', '.join(foreign[:3])}"
                              f"{', ...' if len(foreign) > 3 else ''}); give a new or empty directory")


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


TRACE_SHA = "servetrace.sha256"  # Parquet key: the sha256 of the source trace the file was made from


PARQUET_SIDECAR = "_servetrace.json"  # a directory of Parquet parts (Spark's output): its key-value metadata


# A Parquet table is a file or a directory of parts (Spark's output: part-*.parquet, rows in file
# order = parts by name, then rows in each part). Every reader of a table goes through these.
def parquet_parts(path: str | os.PathLike) -> list[Path]:
    """The table's Parquet files in row order: `path` itself, or a directory's parts by name."""
    path = Path(path)
    if not path.is_dir():
        return [path]
    parts = sorted(p for p in path.glob("*.parquet") if not p.name.startswith((".", "_")))
    if not parts:
        raise ServetraceError(f"{path}: a directory without Parquet parts")
    return parts


def parquet_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The table's servetrace key-value metadata (a directory's is in its PARQUET_SIDECAR)."""
    if Path(path).is_dir():
        sidecar = Path(path) / PARQUET_SIDECAR
        return json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}
    meta = pq.read_schema(path).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if not k.startswith(b"ARROW")}


def parquet_schema(path: str | os.PathLike) -> pa.Schema:
    return pq.read_schema(parquet_parts(path)[0])


def parquet_columns(path: str | os.PathLike) -> list[str]:
    return parquet_schema(path).names


def parquet_footers(path: str | os.PathLike) -> list[pq.FileMetaData]:
    """Each part's footer (row groups, column statistics), in row order."""
    return [pq.read_metadata(p) for p in parquet_parts(path)]


def parquet_rows(path: str | os.PathLike) -> int:
    return sum(meta.num_rows for meta in parquet_footers(path))


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None) -> pa.Table:
    """The whole table (or `columns` of it) in row order (ParquetFile, not pq.read_table: through
    pyarrow.dataset that imports pandas, ~0.24 s of a small characterize)."""
    tables = [pq.ParquetFile(p).read(columns=columns) for p in parquet_parts(path)]
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def parquet_batches(path: str | os.PathLike, columns: list[str] | None = None, batch_size: int = 65_536,
                    **options: Any) -> Iterator[pa.RecordBatch]:
    """The table's batches in row order, part after part (`options`: pyarrow.parquet.ParquetFile's)."""
    for part in parquet_parts(path):
        yield from pq.ParquetFile(part, **options).iter_batches(batch_size=batch_size, columns=columns)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _sweep_leftovers(out_dir: Path) -> None:
    """Remove the temporaries of a run that was killed here (only called with the lock held)."""
    for entry in out_dir.iterdir():
        if _LEFTOVER.match(entry.name) and entry not in _LIVE:
            _remove(entry)


@contextlib.contextmanager
def output_lock(out_dir: str | os.PathLike) -> Iterator[None]:
    """One run at a time per output directory; a second one fails at once with a clear message."""
    out_dir = check_output(out_dir, "dir")
    _mkdir(out_dir)
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
