"""The `servetrace` command: a thin typer layer over the library (the API in servetrace/__init__.py
and the command modules). It parses options and prints through servetrace.console, no more."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from servetrace import options as opt
from servetrace.errors import ServetraceError
from servetrace.grouping import HELP as GROUP_HELP

app = typer.Typer(
    name="servetrace",
    help="Characterize LLM-serving request traces, fit workload bundles, generate and validate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Shared options, defined once.
OutDir = Annotated[Path, typer.Option("--out", "-o", parser=opt.out_path, help="Output directory.")]
FormatOpt = Annotated[
    str,
    typer.Option("--format", "-f", help="Input format: auto|burstgpt|azure|mooncake|bailian|copilot|tracelab|cc-traces|baseten|generic|servegen."),
]
MapOpt = Annotated[
    Optional[List[str]],
    typer.Option("--map", "-m", help="Generic input: map a source column to a canonical one, SRC=canonical."),
]
TimeUnitOpt = Annotated[
    str, typer.Option("--time-unit", help="Timestamp unit of a generic input: auto|s|ms|us|ns|datetime.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON summary.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
GroupByOpt = Annotated[
    Optional[str],
    typer.Option("--group-by", callback=opt.group_by, help=GROUP_HELP),
]
MemoryOpt = Annotated[
    Optional[str], typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 4GB; larger work spills to disk.")
]
EngineOpt = Annotated[str, typer.Option("--engine", help="Where the work runs: duckdb (this machine) or spark "
                                                         "(needs pyspark: pip install 'servetrace[spark]', and Java 17+).")]
SparkMasterOpt = Annotated[Optional[str], typer.Option("--spark-master", help="Spark master URL (default local[2]).")]
SparkConfOpt = Annotated[Optional[list[str]], typer.Option("--spark-conf", help="Spark setting KEY=VALUE (repeatable).")]


def _engine(name: str, master: Optional[str], conf: Optional[List[str]]):
    from servetrace.spark.session import parse_conf
    from servetrace.stages.engine import Engine

    return Engine(name, master, parse_conf(conf))


@app.callback()
def _root() -> None:
    """Characterize LLM-serving request traces, fit workload bundles, generate and validate."""


def _emit(command: str, summary: dict, as_json: bool) -> None:
    """Print a command's summary: JSON, or its text from servetrace.console."""
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        from servetrace.console import text

        typer.echo(text(command, summary))


def _ingest_settings(fmt: str, maps: Optional[List[str]], time_unit: str):
    from servetrace.ingest.options import ingest_settings

    return ingest_settings(fmt, maps or [], time_unit)


@app.command()
def ingest(
    trace: Annotated[Path, typer.Argument(help="Raw trace: CSV, JSONL or Parquet, plain, .gz or .zst.")],
    out: OutDir,
    fmt: FormatOpt = "auto",
    maps: MapOpt = None,
    time_unit: TimeUnitOpt = "auto",
    memory_limit: MemoryOpt = None,
    as_json: JsonOpt = False,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
) -> None:
    """Land a raw trace as DIR/requests.parquet (canonical, sorted) and DIR/rejects.parquet."""
    from servetrace.ingest import ingest_trace

    from servetrace.bundle.cli_support import is_pool_input

    if is_pool_input(trace, fmt):
        from servetrace.bundle.cli_support import servegen_to_bundle

        _emit("bundle from-servegen", servegen_to_bundle(trace, out), as_json)
        return
    summary = ingest_trace(trace, out, _ingest_settings(fmt, maps, time_unit), memory_limit=memory_limit,
                           engine=_engine(engine, spark_master, spark_conf))
    _emit("ingest", summary, as_json)


@app.command()
def characterize(
    trace: Annotated[Path, typer.Argument(help="Raw trace: CSV, JSONL or Parquet, plain, .gz or .zst.")],
    out: OutDir,
    window_s: Annotated[int, typer.Option("--window", callback=opt.checked,
                                          help="Analysis window in seconds (rates, CVs, fits).")] = 600,
    group_by: GroupByOpt = None,
    fmt: FormatOpt = "auto",
    maps: MapOpt = None,
    time_unit: TimeUnitOpt = "auto",
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    memory_limit: MemoryOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
) -> None:
    """Ingest TRACE (reused when unchanged) and run every stage: DIR/tables/*.parquet and DIR/findings.json."""
    import servetrace

    summary = servetrace.characterize(trace, out, window_s=window_s, group_by=group_by, format=fmt, mapping=maps,
                                      time_unit=time_unit, memory_limit=memory_limit, quiet=quiet, engine=engine,
                                      spark_master=spark_master, spark_conf=spark_conf)
    _emit("characterize", summary, as_json)


@app.command()
def generate(
    bundle: Annotated[Path, typer.Argument(help="bundle.json, or a directory holding one.")],
    out: Annotated[Path, typer.Option("--out", "-o", parser=opt.out_path, help="Output file (.parquet, .csv, .jsonl, ...).")],
    duration: Annotated[Optional[float], typer.Option("--duration", callback=opt.checked, help="Seconds to generate (default: the source's span, first to last arrival).")] = None,
    start: Annotated[Optional[float], typer.Option("--start", callback=opt.checked, help="First second (default: the source's first arrival).")] = None,
    rate_scale: Annotated[Optional[float], typer.Option("--rate-scale", callback=opt.checked, help="More (or less) load with the same burstiness: X times every client's rate, each client's inter-arrival shape kept. Use it to ask 'what if traffic grew X-fold?'.")] = None,
    time_scale: Annotated[Optional[float], typer.Option("--time-scale", callback=opt.checked, help="The same requests stretched (X > 1) or compressed (X < 1) in time: seconds x X, as vLLM's, SGLang's and Vidur's replay factors do (2 = twice as slow). Bursts get X times shorter or longer, so burstiness at a given time scale changes; use it to replay the trace faster, not to model growth.")] = None,
    rate: Annotated[Optional[float], typer.Option("--rate", callback=opt.checked, help="Scale to this mean aggregate rate (req/s).")] = None,
    rate_fn: Annotated[Optional[Path], typer.Option("--rate-fn", help="CSV window_start_s,rate_rps: target aggregate rate per window.")] = None,
    clients: Annotated[Optional[str], typer.Option("--clients", help="top:N, or comma-separated client ids.")] = None,
    seed: Annotated[int, typer.Option("--seed", callback=opt.checked, help="Random seed.")] = 0,
    sessions: Annotated[bool, typer.Option("--sessions/--no-sessions", help="Run the bundle's session model (v2 bundles that have one).")] = True,
    block_size: Annotated[Optional[int], typer.Option("--block-size", callback=opt.checked, help="Tokens per hash_ids block (default: the source's).")] = None,
    out_format: Annotated[Optional[str], typer.Option("--format", "-f", help="parquet|csv|burstgpt|mooncake|vidur (default: from the extension).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate a synthetic request trace (canonical schema) from a workload bundle; deterministic per seed."""
    import servetrace

    summary = servetrace.generate(bundle, out, duration_s=duration, start_s=start, rate_scale=rate_scale,
                                  time_scale=time_scale, rate_rps=rate, rate_fn=rate_fn, clients=clients, seed=seed,
                                  sessions=sessions, block_size=block_size, format=out_format)
    _emit("generate", summary, as_json)


@app.command()
def validate(
    source: Annotated[Path, typer.Argument(help="Source trace: raw trace, canonical Parquet or output directory.")],
    synthetic: Annotated[Path, typer.Argument(help="Synthetic trace: raw trace, canonical Parquet or output directory.")],
    out: OutDir,
    window_s: Annotated[int, typer.Option("--window", callback=opt.checked, help="Rate window in seconds.")] = 600,
    no_page: Annotated[bool, typer.Option("--no-page", help="Write fidelity.json only.")] = False,
    bundle: Annotated[Optional[Path], typer.Option(
        "--bundle", help="Bundle the synthetic trace came from (default: SOURCE's bundle.json when SOURCE is an output "
                         "directory): two more seeds of it give the arrival checks' seed-to-seed noise floor.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure how close SYNTHETIC is to SOURCE: DIR/fidelity.json (with pass/fail checks and the arrival checks'
    noise floors) and DIR/fidelity.html."""
    import servetrace

    _emit("validate", servetrace.validate(source, synthetic, out, window_s=window_s, page=not no_page, bundle=bundle),
          as_json)


@app.command()
def provision(
    source: Annotated[Path, typer.Argument(help="Source trace: raw trace, canonical Parquet or output directory.")],
    out: OutDir,
    synthetic: Annotated[Optional[Path], typer.Option("--synthetic", help="Our synthetic trace (any input form).")] = None,
    bundle: Annotated[Optional[Path], typer.Option("--bundle", help="Generate ours from this bundle, as long as the source.")] = None,
    prefill: Annotated[float, typer.Option("--prefill", callback=opt.checked, help="Server-seconds per input token.")] = 2.5e-4,
    decode: Annotated[float, typer.Option("--decode", callback=opt.checked, help="Seconds per decode step (one output token).")] = 0.03,
    batch: Annotated[int, typer.Option("--batch", callback=opt.checked, help="Requests sharing a decode step.")] = 16,
    overhead: Annotated[float, typer.Option("--overhead", callback=opt.checked, help="Fixed seconds per request.")] = 0.0,
    routing: Annotated[str, typer.Option("--routing", help="round_robin | random.")] = "round_robin",
    metric: Annotated[str, typer.Option("--metric", help="Latency target on ttft | e2e.")] = "ttft",
    quantile: Annotated[float, typer.Option("--quantile", callback=opt.checked, help="Latency quantile, e.g. 0.99.")] = 0.99,
    target: Annotated[float, typer.Option("--target", callback=opt.checked, help="Latency target in seconds.")] = 2.0,
    max_servers: Annotated[int, typer.Option("--max-servers", callback=opt.checked, help="Give up above this many servers.")] = 100_000,
    seed: Annotated[int, typer.Option("--seed", callback=opt.checked, help="Seed of the naive trace, random routing and generation.")] = 0,
    no_page: Annotated[bool, typer.Option("--no-page", help="Write provision.json only.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Servers needed to meet a latency target for SOURCE, ours and a naive workload (Poisson, independent lengths)."""
    from servetrace.provision import ServingModel, provision_traces

    model = ServingModel(prefill_s_per_token=prefill, decode_s_per_token=decode, batch=batch, overhead_s=overhead,
                         routing=routing, metric=metric, quantile=quantile, target_s=target,
                         max_servers=max_servers, seed=seed)
    result = provision_traces(source, out, synthetic=synthetic, bundle=bundle, model=model, seed=seed,
                              page=not no_page)
    _emit("provision", result, as_json)


@app.command()
def report(
    dirs: Annotated[List[Path], typer.Argument(help="A characterized output directory; two draw them side by side.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", parser=opt.out_path, help="One DIR: the HTML file (default DIR/report.html). "
                                                                     "Two: the output directory.")] = None,
) -> None:
    """Rebuild DIR/report.html from findings.json and tables/, or compare two traces: report A B --out DIR."""
    from servetrace.report import write_comparison, write_report

    if len(dirs) == 1:
        path = write_report(dirs[0], out)
    elif len(dirs) == 2 and out is not None:
        path = write_comparison(dirs[0], dirs[1], out)
    else:
        raise ServetraceError("report takes DIR [--out FILE], or A B --out DIR")
    _emit("report", {"report": str(path)}, False)


@app.command()
def fit(
    out_dir: Annotated[Path, typer.Argument(help="Output directory holding requests.parquet.")],
    window_s: Annotated[int, typer.Option("--window", callback=opt.checked, help="Rate window in seconds.")] = 600,
    group_by: GroupByOpt = None,
    as_json: JsonOpt = False,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
) -> None:
    """Fit DIR/requests.parquet into the workload bundle DIR/bundle.json (schema servetrace.bundle/v1)."""
    from servetrace.bundle.cli_support import fit_to_bundle
    from servetrace.settings import Settings

    summary = fit_to_bundle(out_dir, Settings(window_s=window_s, group_by=group_by),
                            _engine(engine, spark_master, spark_conf))
    _emit("fit", summary, as_json)


@app.command()
def export(
    source: Annotated[Path, typer.Argument(help="Output directory (bundle.json / requests.parquet), a bundle .json or a .parquet trace.")],
    to: Annotated[str, typer.Option("--to", help="servegen|knobs|inference-perf|mooncake|burstgpt|vidur|azure.")],
    out: Annotated[Path, typer.Option("--out", "-o", parser=opt.out_path, help="Output path (a directory for servegen and knobs, else a file).")],
    category: Annotated[Optional[str], typer.Option("--category", help="servegen: language|reason|multimodal (default: from the data).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="servegen: model directory name.")] = None,
    block_size: Annotated[int, typer.Option("--block-size", callback=opt.checked, help="mooncake: tokens per hash_ids block.")] = 512,
    sessions: Annotated[bool, typer.Option("--sessions", help="mooncake: write session_id (AIPerf replays each session as a multi-turn conversation).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export a bundle or request rows in a format another tool loads unmodified."""
    import servetrace

    _emit("export", servetrace.export(source, to, out, category=category, model=model, block_size=block_size,
                                      sessions=sessions), as_json)


bundle_app = typer.Typer(help="Workload bundles: imports.", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")


@bundle_app.command("from-servegen")
def bundle_from_servegen(
    pool: Annotated[Path, typer.Argument(help="ServeGen pool directory (chunk-<id>-trace.csv, chunk-<id>-dataset.json).")],
    out: OutDir,
    as_json: JsonOpt = False,
) -> None:
    """Import a ServeGen client pool as DIR/bundle.json, reporting trace files without a dataset."""
    from servetrace.bundle.cli_support import servegen_to_bundle

    _emit("bundle from-servegen", servegen_to_bundle(pool, out), as_json)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # typer turns Ctrl-C into Exit(130), returned, not raised
            if code == 130:
                typer.echo("servetrace: interrupted", err=True)
            sys.exit(code)
    except ServetraceError as exc:
        typer.echo(f"servetrace: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (typer.Exit, SystemExit) as exc:
        sys.exit(getattr(exc, "exit_code", getattr(exc, "code", 0)) or 0)
    except typer.Abort:
        typer.echo("servetrace: aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("servetrace: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if isinstance(exc, typer.TyperException) and hasattr(exc, "show"):  # usage errors
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        if os.environ.get("SERVETRACE_DEBUG"):
            raise
        from servetrace.io import no_space

        if no_space(exc):
            typer.echo(f"servetrace: error: no space left on device: {str(exc).splitlines()[0]}", err=True)
            sys.exit(2)
        if isinstance(exc, OSError) and exc.filename:
            typer.echo(f"servetrace: error: {exc.filename}: {exc.strerror}", err=True)
            sys.exit(2)
        msg = str(exc).splitlines()[0] if str(exc) else ""
        typer.echo(f"servetrace: internal error: {type(exc).__name__}: {msg} (SERVETRACE_DEBUG=1 shows more)", err=True)
        sys.exit(1)
