"""servetrace: characterize LLM-serving request traces and fit workloads a generator can replay.

The Python API is the command line's, one function per command, each returning the summary dict
the command prints with `--json` (the `servetrace` command is a thin layer over these):

    import servetrace

    summary = servetrace.characterize("trace.csv", "out")            # out/findings.json, tables/, bundle.json, report.html
    servetrace.generate("out", "synthetic.parquet", seed=1)          # a trace from out/bundle.json
    fidelity = servetrace.validate("out", "synthetic.parquet", "out")  # out/fidelity.json: checks, pass / fail
    servetrace.export("out", "mooncake", "trace.jsonl")              # a format another tool loads

Bad input raises `servetrace.ServetraceError` with a one-line message. Each function imports its
machinery when called, so `import servetrace` stays cheap.
"""

from __future__ import annotations

from servetrace.errors import ServetraceError

TYPE_CHECKING = False
if TYPE_CHECKING:  # the command imports this package first: nothing here may cost start-up time
    from pathlib import Path
    from typing import Iterable

__version__ = "0.1.0"
__all__ = ["ServetraceError", "characterize", "export", "generate", "validate"]


def characterize(trace: str | Path, out_dir: str | Path, *, window_s: int = 600, group_by: str | None = None,
                 format: str = "auto", mapping: dict[str, str] | Iterable[str] | None = None,
                 time_unit: str = "auto", memory_limit: str | None = None, quiet: bool = True,
                 engine: str = "duckdb", spark_master: str | None = None, spark_conf: Iterable[str] | None = None,
                 stages=None, fit=None) -> dict:
    """Ingest `trace` into `out_dir` (reused when unchanged), run every stage and write
    findings.json, tables/, bundle.json and report.html; a ServeGen pool directory is imported as
    the bundle. `mapping` maps source columns to canonical ones ({"ts": "arrival_s"} or
    ["ts=arrival_s"]); `group_by`: client_id|session_id|model|service|columns joined by ","|all;
    `stages` / `fit`: a servetrace.settings.StageSettings / FitSettings (thresholds; default: the
    documented defaults), recorded in findings.json and bundle.json."""
    from servetrace.characterization import characterize as run
    from servetrace.ingest.options import ingest_settings
    from servetrace.settings import Settings
    from servetrace.spark.session import parse_conf
    from servetrace.stages.engine import Engine

    pairs = [f"{k}={v}" for k, v in mapping.items()] if isinstance(mapping, dict) else list(mapping or [])
    settings = Settings(window_s=window_s, group_by=group_by, memory_limit=memory_limit,
                        **({"stages": stages} if stages is not None else {}), **({"fit": fit} if fit is not None else {}))
    return run(trace, out_dir, settings, ingest_settings(format, pairs, time_unit), quiet=quiet,
               engine=Engine(engine, spark_master, parse_conf(list(spark_conf) if spark_conf else None)))


def generate(bundle: str | Path, out: str | Path, *, duration_s: float | None = None, start_s: float | None = None,
             rate_scale: float | None = None, time_scale: float | None = None, rate_rps: float | None = None,
             rate_fn: str | Path | Iterable[tuple[float, float]] | None = None, clients: str | None = None,
             seed: int = 0, sessions: bool = True, block_size: int | None = None, format: str | None = None) -> dict:
    """Generate a synthetic trace from a bundle (a bundle.json or a directory holding one) into
    `out` (.parquet, .csv, .jsonl; or `format`: parquet|csv|burstgpt|mooncake|vidur). `rate_fn`:
    a CSV `window_start_s,rate_rps` or (start, rate) pairs; `sessions`: run the bundle's session
    model (v2 bundles that have one); `block_size`: tokens per hash_ids block (default: the
    source's). Same bundle, options and seed: same bytes."""
    from pathlib import Path

    from servetrace.generation import GenerateOptions
    from servetrace.generation.run import generate_file
    from servetrace.generation.write import read_rate_fn

    if isinstance(rate_fn, (str, Path)):
        rate_fn = read_rate_fn(rate_fn)
    elif rate_fn is not None:
        rate_fn = tuple((float(s), float(r)) for s, r in rate_fn)
    def num(x: float | None) -> float | None:  # 3600 and 3600.0 are one option (and one file)
        return None if x is None else float(x)

    options = GenerateOptions(start_s=num(start_s), duration_s=num(duration_s), rate_scale=num(rate_scale),
                              time_scale=num(time_scale),
                              rate_rps=num(rate_rps), rate_fn=rate_fn, clients=clients, seed=int(seed),
                              sessions=sessions, block_size=block_size)
    return generate_file(bundle, out, options, format)


def validate(source: str | Path, synthetic: str | Path, out_dir: str | Path, *, window_s: int = 600,
             page: bool = True, bundle: str | Path | None = None) -> dict:
    """How close `synthetic` is to `source` (raw traces, canonical Parquet or output directories):
    writes out_dir/fidelity.json (every metric, its threshold, pass / fail, and the arrival
    metrics' noise floors: seed to seed from `bundle` or the source directory's, half to half from
    the source) and fidelity.html."""
    from servetrace.settings import Settings
    from servetrace.validation.run import validate_traces

    return validate_traces(source, synthetic, out_dir, Settings(window_s=window_s), page=page, bundle=bundle)


def export(source: str | Path, to: str, out: str | Path, *, category: str | None = None, model: str | None = None,
           block_size: int = 512, sessions: bool = True) -> dict:
    """Write a bundle or request rows (a directory, a bundle .json or a .parquet trace) as `to`:
    servegen|knobs|mooncake|burstgpt|vidur, in a form that tool loads unmodified."""
    from servetrace.exports import export as run

    return run(source, to, out, category=category, model=model, block_size=block_size, sessions=sessions)
