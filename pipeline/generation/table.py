"""Arrays -> the canonical request table (servetrace.schema.CANONICAL), absent columns null."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from servetrace.arrays import arrow_of
from servetrace.schema import CANONICAL


_ZEROS: list[pa.Buffer] = []  # one zeroed buffer every all-null column of a table shares


def _nulls(n: int, kind: pa.DataType) -> pa.Array:
    """An all-null column without a fresh zeroed allocation per column and block (pa.nulls makes
    one: ~18 columns of every block, page faults included): validity, values and string offsets
    all read the one shared buffer of zeros."""
    if not (pa.types.is_primitive(kind) or pa.types.is_string(kind)):
        return pa.nulls(n, type=kind)
    need = 8 * (n + 1)
    if not _ZEROS or _ZEROS[0].size < need:
        _ZEROS[:] = [pa.py_buffer(np.zeros(need, dtype=np.uint8))]
    zeros = _ZEROS[0]
    buffers = [zeros, zeros, pa.py_buffer(b"")] if pa.types.is_string(kind) else [zeros, zeros]
    return pa.Array.from_buffers(kind, n, buffers, null_count=n)


def canonical_table(columns: dict[str, object]) -> pa.Table:
    """A canonical table from whichever columns are given (numpy arrays, lists or Arrow arrays);
    every other column is all-null, `failed` defaults to False."""
    unknown = set(columns) - set(CANONICAL.names)
    if unknown:
        raise ValueError(f"not canonical columns: {sorted(unknown)}")
    n = len(columns["arrival_s"])
    arrays = []
    for f in CANONICAL:
        x = columns.get(f.name)
        if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":  # through the buffers: pa.array imports pandas
            a = arrow_of(x)
            arrays.append(a if a.type == f.type else a.cast(f.type))  # a cast loads pyarrow.compute
        elif x is not None:
            arrays.append((x if x.type == f.type else x.cast(f.type)) if isinstance(x, pa.Array) else pa.array(x, type=f.type))
        elif f.name == "failed":
            arrays.append(arrow_of(np.zeros(n, dtype=bool)))
        else:
            arrays.append(_nulls(n, f.type))
    return pa.Table.from_arrays(arrays, schema=CANONICAL)
