"""Arrow arrays as numpy through their buffers: pyarrow's own conversions (`to_numpy`) import pandas,
about a quarter second of CPU in a command that otherwise never needs it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def numpy_of(arr: pa.Array | pa.ChunkedArray, null: int | float | None = None) -> np.ndarray:
    """An integer or floating-point array as numpy (zero-copy for one chunk without nulls); a null
    becomes `null` when given. Other types, and nulls without a `null`, go through pyarrow."""
    if isinstance(arr, pa.ChunkedArray):
        parts = [numpy_of(c, null) for c in arr.chunks if len(c)]
        if not parts:
            return numpy_of(pa.nulls(0, arr.type), null)
        return np.concatenate(parts) if len(parts) != 1 else parts[0]
    numeric = pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
    if not numeric or (arr.null_count and null is None):
        return arr.to_numpy(zero_copy_only=False)
    dtype = np.dtype(arr.type.to_pandas_dtype())
    out = np.frombuffer(arr.buffers()[1], dtype, len(arr), arr.offset * dtype.itemsize)
    if arr.null_count:
        valid = np.unpackbits(np.frombuffer(arr.buffers()[0], np.uint8), bitorder="little")
        out = out.copy()
        out[valid[arr.offset: arr.offset + len(arr)] == 0] = null
    return out


def arrow_of(x: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """A numeric or boolean numpy array as Arrow (numbers zero-copy); `mask` True marks a null."""
    x = np.ascontiguousarray(x)
    validity = None if mask is None else pa.py_buffer(np.packbits(~np.asarray(mask, bool), bitorder="little"))
    nulls = -1 if mask is None else int(np.count_nonzero(mask))
    if x.dtype == bool:
        return pa.Array.from_buffers(pa.bool_(), x.size, [validity, pa.py_buffer(np.packbits(x, bitorder="little"))],
                                     nulls)
    return pa.Array.from_buffers(pa.from_numpy_dtype(x.dtype), x.size, [validity, pa.py_buffer(x)], nulls)


def strings_of(values: list[str | None]) -> pa.Array:
    """A short list of strings (names, one per client: not a column of rows) as an Arrow string array."""
    data = [v.encode() if v is not None else b"" for v in values]
    offsets = np.zeros(len(data) + 1, np.int32)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    missing = np.array([v is None for v in values], bool)
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little")) if missing.any() else None
    return pa.Array.from_buffers(pa.string(), len(data), [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))],
                                 int(missing.sum()))


class Scratch:
    """Work arrays a batch consumer reuses batch after batch, by name (the row stream's 1 M-row
    batches): memory that stays allocated is not handed back to the kernel by an allocator trim
    (DuckDB's idle worker threads call glibc's malloc_trim, which releases every free chunk of
    every arena), so the next batch does not fault its pages in again and have them zeroed.
    A view it returns is valid until the same name is asked for again: nothing kept past a batch
    may be one (copy it)."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def __call__(self, name: str, n: int, dtype=np.float64) -> np.ndarray:
        a = self._arrays.get(name)
        if a is None or a.size < n or a.dtype != dtype:
            a = self._arrays[name] = np.empty(n + (n >> 4) + 1, dtype)  # room for a batch a little longer
        return a[:n]

    def clear(self) -> None:
        """Lets the work arrays go (a consumer done with its batches)."""
        self._arrays.clear()
