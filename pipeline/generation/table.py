"""Arrays -> the canonical request table (servetrace.schema.CANONICAL), absent columns null."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from servetrace.arrays import arrow_of
from servetrace.schema import CANONICAL


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
            arrays.append(arrow_of(x).cast(f.type))
        elif x is not None:
            arrays.append(x.cast(f.type) if isinstance(x, pa.Array) else pa.array(x, type=f.type))
        elif f.name == "failed":
            arrays.append(arrow_of(np.zeros(n, dtype=bool)))
        else:
            arrays.append(pa.nulls(n, type=f.type))
    return pa.Table.from_arrays(arrays, schema=CANONICAL)
