"""Exports of a bundle or of request rows to formats other tools load unmodified.

`export(source, to, out, ...)`: `source` is a directory (DIR/bundle.json, DIR/requests.parquet),
a bundle file, or a Parquet trace (ingested or generated). One module per target format."""

from __future__ import annotations

from pathlib import Path

from servetrace.errors import ServetraceError
from servetrace.outputs import BUNDLE, REQUESTS

BUNDLE_FORMATS = ("servegen", "knobs", "inference-perf")
ROW_FORMATS = ("mooncake", "burstgpt", "vidur", "azure")
FORMATS = BUNDLE_FORMATS + ROW_FORMATS


def _bundle_of(source: Path) -> dict:
    from servetrace.bundle.model import load_bundle

    if source.is_dir() or source.suffix == ".json":
        return load_bundle(source)
    raise ServetraceError(f"{source}: give a directory with {BUNDLE} or a bundle .json file")


def _rows_of(source: Path) -> Path:
    path = source / REQUESTS if source.is_dir() else source
    if path.suffix != ".parquet" or not path.exists():
        raise ServetraceError(f"{source}: needs request rows: a directory with {REQUESTS} or a .parquet trace")
    return path


def export(source: str | Path, to: str, out: str | Path, category: str | None = None,
           model: str | None = None, block_size: int = 512, sessions: bool = False) -> dict:
    """Write `source` as format `to` at `out` (atomically); returns a summary dict."""
    source, out = Path(source), Path(out)
    if not source.exists():
        raise ServetraceError(f"{source}: no such file or directory")
    if to == "servegen":
        from servetrace.exports.servegen import export_servegen

        return export_servegen(_bundle_of(source), out, category=category, model=model)
    if to == "knobs":
        from servetrace.exports.knobs import export_knobs

        return export_knobs(_bundle_of(source), out)
    if to == "inference-perf":
        from servetrace.exports.inference_perf import export_inference_perf
        from servetrace.exports.knobs import knob_card

        return export_inference_perf(knob_card(_bundle_of(source)), out)
    if to == "mooncake":
        from servetrace.exports.mooncake import export_mooncake

        return export_mooncake(_rows_of(source), out, block_size=block_size, sessions=sessions)
    if to == "burstgpt":
        from servetrace.exports.burstgpt import export_burstgpt

        return export_burstgpt(_rows_of(source), out)
    if to == "vidur":
        from servetrace.exports.vidur import export_vidur

        return export_vidur(_rows_of(source), out)
    if to == "azure":
        from servetrace.exports.azure import export_azure

        return export_azure(_rows_of(source), out)
    raise ServetraceError(f"--to {to!r}: expected one of {', '.join(FORMATS)}")
