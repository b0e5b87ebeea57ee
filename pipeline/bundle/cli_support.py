"""What the bundle commands do, so pipeline/cli.py stays a thin layer: run, summarize, describe."""

from __future__ import annotations

import os
from pathlib import Path

from servetrace.bundle.model import save_bundle
from servetrace.outputs import BUNDLE
from servetrace.settings import Settings


def _summary(bundle: dict, path: Path) -> dict:
    return {"bundle": str(path), "clients": len(bundle["clients"]), "category": bundle["category"],
            "group_by": bundle["group_by"], "windows": len(bundle["aggregate"]["window_start_s"]),
            "span_s": bundle["span_s"], "bytes": os.path.getsize(path)}


def fit_to_bundle(out_dir: str | Path, settings: Settings, engine=None) -> dict:
    """Fit DIR/requests.parquet into DIR/bundle.json: the streamed row fit (DuckDB, the default), or
    the set-based SQL fit on `engine` (a servetrace.stages.engine.Engine: Spark)."""
    from servetrace.io import output_lock
    from servetrace.outputs import REQUESTS

    with output_lock(out_dir):  # one run at a time per output directory
        if engine is None or engine.name == "duckdb":
            from servetrace.bundle.fit import fit_bundle

            bundle = fit_bundle(out_dir, settings)
        else:
            from servetrace.bundle.fit_sql import fit_file

            bundle = fit_file(Path(out_dir) / REQUESTS, settings, engine)
        return _summary(bundle, save_bundle(Path(out_dir) / BUNDLE, bundle))


def is_pool_input(path: str | Path, fmt: str) -> bool:
    """Whether an input is a ServeGen pool directory (fitted parameters, not requests)."""
    if fmt == "servegen":
        return True
    if fmt != "auto" or not Path(path).is_dir():
        return False
    from servetrace.bundle.servegen_import import is_servegen_pool  # pulls in scipy: only for directories

    return is_servegen_pool(path)


def servegen_to_bundle(pool: str | Path, out_dir: str | Path) -> dict:
    from servetrace.bundle.servegen_import import import_servegen_pool
    from servetrace.io import output_lock

    bundle = import_servegen_pool(pool)
    with output_lock(out_dir):
        summary = _summary(bundle, save_bundle(Path(out_dir) / BUNDLE, bundle))
    summary["missing_datasets"] = bundle["source"]["missing_datasets"]
    summary["dropped_dataset_windows"] = bundle["source"]["dropped_dataset_windows"]
    return summary
