"""`servetrace validate`: read both traces at the edge, compute fidelity, write the outputs."""

from __future__ import annotations

from pathlib import Path

import polars as pl


from servetrace.io import WRITTEN_BY, output_lock, write_json, write_parquet, write_text
from servetrace.outputs import FIDELITY, FIDELITY_PAGE, FIDELITY_WINDOWS, INPUTS, table_path
from servetrace.settings import Settings
from servetrace.validation.agents import agent_fidelity
from servetrace.validation.fidelity import fidelity
from servetrace.validation.inputs import load_requests, requests_path
from servetrace.validation.noise import find_bundle, seed_tables
from servetrace.validation.reuse import reuse_fidelity
from servetrace.validation.page import fidelity_page
from servetrace.settings import FidelitySettings


def validate_traces(source: str | Path, synthetic: str | Path, out_dir: str | Path,
                    settings: Settings = Settings(), thresholds: FidelitySettings = FidelitySettings(),
                    page: bool = True, bundle: str | Path | None = None) -> dict:
    """Compare `synthetic` with `source`; write DIR/fidelity.json, DIR/fidelity.html, and the
    per-window rates (DIR/tables/fidelity_windows.parquet). Returns the fidelity dict. The checks'
    seed-to-seed noise floor comes from `bundle` (else the source directory's bundle.json): its
    floor seeds' workloads, generated once for the arrival, length, reuse and agent checks."""
    out_dir = Path(out_dir)
    bundle_path = find_bundle(bundle, source)
    with output_lock(out_dir):
        src_path = requests_path(source, out_dir / INPUTS / "source")
        syn_path = requests_path(synthetic, out_dir / INPUTS / "synthetic")
        src, syn = load_requests(src_path, out_dir), load_requests(syn_path, out_dir)
        seeds = seed_tables(bundle_path, thresholds.floor_seeds)
        keep = ["arrival_s", "input_tokens", "output_tokens", "reason_tokens"]
        frames = None if seeds is None else tuple(pl.from_arrow(t.select([c for c in keep if c in t.column_names]))
                                                  for t in seeds)
        reuse = reuse_fidelity(src_path, syn_path, settings, seeds, out_dir)
        result, tables = fidelity(src, syn, settings, thresholds, reuse, frames)
        agents = agent_fidelity(src_path, syn_path, bundle_path, thresholds, seeds, out_dir)
        if agents:  # agent traces: their checks join the others (named agent_*)
            result["agents"] = agents["values"] | {"noise_floor_basis": agents["noise_floor_basis"]}
            result["checks"].update({f"agent_{k}": c for k, c in agents["checks"].items()})
            result["pass"] = all(c["pass"] for c in result["checks"].values() if c["pass"] is not None)
        result["inputs"] = {"source": str(source), "synthetic": str(synthetic),
                            "bundle": None if bundle_path is None else str(bundle_path)}
        write_parquet(table_path(out_dir, FIDELITY_WINDOWS), tables["windows"].to_arrow(), {WRITTEN_BY: "validate"})
        if page:
            title = f"Fidelity: {Path(synthetic).name} vs {Path(source).name}"
            write_text(out_dir / FIDELITY_PAGE, fidelity_page(result, tables, title))
        write_json(out_dir / FIDELITY, result)
    return result


__all__ = ["validate_traces"]
