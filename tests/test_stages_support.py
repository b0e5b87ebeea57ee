"""Helpers for the stage tests: canonical request tables built in memory, run through every stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from servetrace import io
from servetrace.characterization import characterize_requests
from servetrace.schema import CANONICAL
from servetrace.settings import Settings


def canonical(arrival_s, **columns) -> pa.Table:
    """A canonical table sorted by arrival: given columns, nulls elsewhere, failed False by default."""
    arrival_s = np.asarray(arrival_s, dtype=float)
    order = np.argsort(arrival_s, kind="stable")
    n = len(arrival_s)
    data = {}
    for field in CANONICAL:
        if field.name == "arrival_s":
            data[field.name] = pa.array(arrival_s[order], field.type)
        elif field.name in columns:
            values = columns[field.name]
            values = [values[i] for i in order] if isinstance(values, list) else np.asarray(values)[order]
            data[field.name] = pa.array(values, field.type)
        elif field.name == "failed":
            data[field.name] = pa.array(np.zeros(n, dtype=bool))
        else:
            data[field.name] = pa.nulls(n, field.type)
    return pa.table(data, schema=CANONICAL)


def run_stages(tmp_path: Path, table: pa.Table, settings: Settings | None = None, meta: dict | None = None):
    path = tmp_path / "requests.parquet"
    io.write_parquet(path, table, meta or {"servetrace.format": "test"})
    return characterize_requests(path, settings or Settings(), scratch_dir=tmp_path)


def gamma_arrivals(n: int, shape: float, rate: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.gamma(shape, 1 / (shape * rate), n))
