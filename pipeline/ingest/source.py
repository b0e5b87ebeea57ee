"""What a raw trace file is: its compression (by content, not name), container and first lines."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

from servetrace.errors import ServetraceError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PARQUET_MAGIC = b"PAR1"
HEAD_BYTES = 1 << 16
LONG_HEAD_BYTES = 1 << 23  # a first JSON line longer than HEAD_BYTES (a session of many calls) is read whole up to this


@dataclass(frozen=True)
class Source:
    path: Path
    compression: str  # none | gzip | zstd
    container: str  # csv | jsonl | parquet
    header: list[str]  # CSV column names, JSONL first record's keys, Parquet column names
    delimiter: str = ","
    first_record: dict | None = None
    padding_at: int | None = None  # a gzip file's zero padding after its last member starts here


def _head(path: Path, compression: str, size: int = HEAD_BYTES) -> bytes:
    """The first decompressed bytes, enough to see the header and a record."""
    try:
        if compression == "gzip":
            with gzip.open(path, "rb") as f:
                return f.read(size)
        if compression == "zstd":
            import zstandard

            with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as f:
                return f.read(size)
        with open(path, "rb") as f:
            return f.read(size)
    except (OSError, EOFError) as exc:
        raise ServetraceError(f"{path}: cannot decompress ({compression}): {exc}") from None
    except Exception as exc:  # zstandard.ZstdError and friends
        raise ServetraceError(f"{path}: cannot decompress ({compression}): {exc}") from None


_WIDE_BOMS = {b"\xff\xfe\x00\x00": "UTF-32-LE", b"\x00\x00\xfe\xff": "UTF-32-BE",
              b"\xff\xfe": "UTF-16-LE", b"\xfe\xff": "UTF-16-BE"}
# A head with more control bytes (NUL included; not tab, newline, CR) than this share, and more
# than a few (a quarter of a head shorter than 32 bytes), is binary; otherwise a record holding a
# NUL is refused on its own, wherever it is.
BINARY_SHARE = 0.01
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 13)) + b"\x7f"


def _first_line(head: bytes, path: Path) -> str:
    for bom, encoding in _WIDE_BOMS.items():
        if head.startswith(bom):
            raise ServetraceError(f"{path}: {encoding} text (byte-order mark); servetrace reads UTF-8: convert it "
                                  f"first, e.g. iconv -f {encoding} -t UTF-8")
    text = head.lstrip(b"\xef\xbb\xbf")
    sample = text[:4096]
    control = len(sample) - len(sample.translate(None, _CONTROL))
    if control > BINARY_SHARE * len(sample) and control >= min(8, max(1, len(sample) // 4)):
        raise ServetraceError(f"{path}: binary content, not a CSV, JSONL or Parquet trace")
    for raw in text.splitlines():
        if raw.strip():
            try:
                return raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                return raw.decode("latin-1").strip()
    return ""


def inspect_source(path: str | Path, max_ratio: float | None = None) -> Source:
    """Sniff `path`; with `max_ratio`, first refuse a compressed file over the decompression ceiling."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ServetraceError(f"{path}: no such file") from None
    except OSError as exc:  # a symbolic link loop, a name too long, no permission
        raise ServetraceError(f"{path}: cannot open: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise ServetraceError(f"{path}: is a directory (a ServeGen pool needs --format servegen)")
    if not stat.S_ISREG(mode):
        raise ServetraceError(f"{path}: not a regular file (a pipe, socket or device is read only once, "
                              f"and a trace is read several times); save it to a file first")
    with open(path, "rb") as f:
        magic = f.read(4)
    if not magic:
        raise ServetraceError(f"{path}: empty file")
    if magic == PARQUET_MAGIC:
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(path).names
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad footer
            raise ServetraceError(f"{path}: unreadable Parquet ({exc})") from None
        return Source(path, "none", "parquet", names)
    compression = "gzip" if magic[:2] == GZIP_MAGIC else "zstd" if magic == ZSTD_MAGIC else "none"
    padding_at = check_expansion(path, compression, max_ratio) if max_ratio is not None else None
    head = _head(path, compression)
    line = _first_line(head, path)
    if line.startswith("{") and len(head) == HEAD_BYTES and not head.lstrip().splitlines()[0].endswith(b"}"):
        line = _first_line(_head(path, compression, LONG_HEAD_BYTES), path)  # the first line goes on
    if not line:
        raise ServetraceError(f"{path}: no records (empty or blank)")
    if line.startswith("[") and (line == "[" or _is_json(line)):
        raise ServetraceError(f"{path}: a JSON array, not JSON lines (one object per line) or CSV")
    if line.startswith("{"):
        # JSON lines. The keys are those of every record (canonical.jsonl_keys), not the first
        # one's: the first record is a record like any other, refused alone if it is broken.
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            record = None
        record = record if isinstance(record, dict) else None
        return Source(path, compression, "jsonl", list(record or {}), first_record=record, padding_at=padding_at)
    delimiter = ","
    if "," not in line:
        for cand in ("\t", ";", "|"):
            if cand in line:
                delimiter = cand
                break
    header = [h.strip().strip('"').strip() for h in next(iter(_csv_rows(line, delimiter)))]
    return Source(path, compression, "csv", header, delimiter=delimiter, padding_at=padding_at)


def _refuse_expansion(path: Path, compression: str, out_bytes: int, in_bytes: int, ratio: float) -> None:
    raise ServetraceError(
        f"{path}: refused: {compression} data expands to more than {out_bytes:,} bytes from {in_bytes:,} "
        f"(over the {ratio:g}x decompression ceiling; a decompression bomb or a mislabelled file)"
    )


def _declared_size(path: Path, compression: str) -> int | None:
    """The zstd frame content size, from the frame header, when the writer stored it. (A gzip
    ISIZE trailer proves nothing: it is modulo 4 GiB, belongs to the last member only, and the
    last 4 bytes of a truncated archive are not one.)"""
    if compression != "zstd":
        return None
    import zstandard

    with open(path, "rb") as f:
        try:
            declared = zstandard.frame_content_size(f.read(18))
        except zstandard.ZstdError:
            return None
    return declared if declared >= 0 else None


def _count_gzip(path: Path, cap: int) -> tuple[int, int | None]:
    """Decompressed size of a (multi-member) gzip file, stopping as soon as it passes `cap`, and
    where zero padding after the last member starts (None: no padding)."""
    total, read, padding_at = 0, 0, None
    d = zlib.decompressobj(wbits=31)
    pending = b""
    with open(path, "rb") as f:
        while True:
            if not pending:
                pending = f.read(1 << 20)
                read += len(pending)
                if not pending:
                    break
            if d.eof:
                if not pending.strip(b"\x00"):  # zero padding after the last member
                    padding_at = read - len(pending) if padding_at is None else padding_at
                    pending = b""
                    continue
                padding_at = None
                d = zlib.decompressobj(wbits=31)  # the next member
            total += len(d.decompress(pending, 1 << 24))
            pending = d.unused_data if d.eof else d.unconsumed_tail
            if total > cap:
                return total, None
    if not d.eof:
        raise EOFError("the archive ends before its end-of-stream marker")
    return total, padding_at


def _count_zstd(path: Path, cap: int) -> tuple[int, None]:
    import zstandard

    total = 0
    with open(path, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as f:
        while block := f.read(1 << 22):
            total += len(block)
            if total > cap:
                return total, None
    return total, None


def check_expansion(path: Path, compression: str, max_ratio: float) -> int | None:
    """Refuse a compressed input that expands more than `max_ratio` times its size, or is truncated.

    A zstd frame that declares its size over the ceiling is refused without decompressing; else a
    capped stream count (C speed, no rows parsed, stops at the ceiling: about 7 % of an ingest of
    the same gzip file) measures it and finds a truncated archive before any row is read.
    Returns where zero padding after the last gzip member starts (`gzip -d` ignores it, DuckDB
    refuses it), or None."""
    if compression == "none":
        return None
    size = os.path.getsize(path)
    cap = int(max_ratio * max(size, 1))
    declared = _declared_size(path, compression)
    if declared is not None and declared > cap:
        _refuse_expansion(path, compression, cap, size, max_ratio)
    try:
        total, padding_at = _count_gzip(path, cap) if compression == "gzip" else _count_zstd(path, cap)
    except Exception as exc:  # noqa: BLE001 - OSError, EOFError, zlib.error, zstandard.ZstdError
        raise ServetraceError(f"{path}: cannot decompress: truncated or corrupt {compression} archive ({exc})") from None
    if total > cap:
        _refuse_expansion(path, compression, cap, size, max_ratio)
    return padding_at


def unpadded(src: Source, copy: Path) -> Source:
    """`src` read from `copy`, its bytes up to the zero padding (when it has any)."""
    if src.padding_at is None:
        return src
    left = src.padding_at
    with open(src.path, "rb") as f, open(copy, "wb") as out:
        while left and (block := f.read(min(left, 1 << 22))):
            out.write(block)
            left -= len(block)
    return replace(src, path=copy, padding_at=None)


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def _csv_rows(line: str, delimiter: str):
    import csv

    return csv.reader(io.StringIO(line), delimiter=delimiter)
