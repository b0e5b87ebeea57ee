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
