"""Arrays -> the canonical request table (servetrace.schema.CANONICAL), absent columns null."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

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
        if f.name in columns:
            arrays.append(pa.array(columns[f.name], type=f.type) if not isinstance(columns[f.name], pa.Array)
                          else columns[f.name].cast(f.type))
        elif f.name == "failed":
            arrays.append(pa.array(np.zeros(n, dtype=bool)))
        else:
            arrays.append(pa.nulls(n, type=f.type))
    return pa.Table.from_arrays(arrays, schema=CANONICAL)
