"""`servetrace characterize`: ingest (or reuse), run every stage, write tables/ and findings.json."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import duckdb
import polars as pl

from servetrace import grouping, io, late_imports
from servetrace.errors import ServetraceError
from servetrace.findings import Finding, assemble, rounded
from servetrace.outputs import BUNDLE, FINDINGS, REPORT, REQUESTS, TABLES
from servetrace.schema import HASH_IDS
from servetrace.settings import IngestSettings, Settings, ingest_of, record
from servetrace.rows import read
from servetrace.rows import stream as row_stream
from servetrace.stages import gaps, gaps_sql, sql
from servetrace.stages.agents import agents
from servetrace.stages.engine import Engine
from servetrace.stages.arrivals import arrivals
from servetrace.stages.clients import clients
from servetrace.stages.context import Context, check_span, sql_variables
from servetrace.stages.failures import failures
from servetrace.stages.lengths import lengths
from servetrace.stages.multimodal import multimodal
from servetrace.stages.periodicity import periodicity
from servetrace.stages.prefix import prefix, reuse_of
from servetrace.stages.quality import quality, timestamp_resolution, trace_profile
from servetrace.stages.reasoning import reasoning
from servetrace.stages.sessions import sessions

if TYPE_CHECKING:
    from servetrace.bundle.fit import Fit

STAGES = ("profile", "gaps", "quality", "arrivals", "clients", "lengths", "rate over time", "failures",
          "sessions", "reasoning", "multimodal", "prefix", "agents")  # the order of the findings


def check_settings(settings: Settings) -> None:
    if settings.window_s <= 0:
        raise ServetraceError(f"--window {settings.window_s}: must be a positive number of seconds")
    if any(s <= 0 for s in settings.idc_scales_s):
        raise ServetraceError("idc scales must be positive seconds")
    if settings.fit_sample < 100:
        raise ServetraceError(f"fit_sample {settings.fit_sample}: must be at least 100")
    if settings.group_by:
        grouping.parse(settings.group_by)


def characterize_requests(requests: str | Path, settings: Settings, trace_info: dict | None = None,
                          progress: Callable[[str], None] | None = None,
                          scratch_dir: str | Path | None = None,
                          engine: Engine | None = None) -> tuple[dict, dict[str, pl.DataFrame]]:
    """All stages over a canonical requests.parquet: (findings document, {table name: frame})."""
    findings, tables, _ = _characterize(requests, settings, trace_info, progress, scratch_dir, with_bundle=False,
                                        engine=engine)
    return findings, tables


def _characterize(requests: str | Path, settings: Settings, trace_info: dict | None,
                  progress: Callable[[str], None] | None, scratch_dir: str | Path | None,
                  with_bundle: bool, engine: Engine | None = None) -> tuple[dict, dict[str, pl.DataFrame], dict | None]:
    """The stages and, `with_bundle`, the bundle: on DuckDB its first pass rides on the stages' row
    stream; on Spark the gap statistics and the fit are set-based SQL (sql/gaps/, sql/fit/)."""
    check_settings(settings)
    engine = engine or Engine()
    step = progress or (lambda name: None)
    meta = io.parquet_metadata(requests)
    has_hash = HASH_IDS in io.parquet_columns(requests)
    tables: dict[str, pl.DataFrame] = {}
    found: list = []
    bundle = None
    with engine.connect(requests, settings.memory_limit, settings.threads, scratch_dir) as con:
        step("profile")
        profile = trace_profile(con)
        ctx = Context(settings, profile, grouping.from_profile(profile, settings.group_by), meta, has_hash)
        check_span(ctx.span_s, settings.window_s, requests)
        variables = sql_variables(ctx)
        sql.set_variables(con, variables)
        sql.run_sql(con, "stg_requests")
        grid = sql.table(con, "timestamp_grid", order_by="grid_s") if ctx.rows else pl.DataFrame(
            {"grid_s": [], "share_on_grid": []}, schema={"grid_s": pl.Float64, "share_on_grid": pl.Float64})
        # one row, or every arrival at one instant: no spacing to measure a grid from
        spread = ctx.rows > 1 and ctx.t1_s > ctx.t0_s
        resolution, _ = timestamp_resolution(grid, settings.stages.grid_share) if spread else (None, 0.0)
        jitter = resolution if resolution is not None and resolution >= settings.stages.deround_from_s and ctx.rows > 1 else 0.0
        ctx = ctx.with_resolution(resolution, jitter)
        variables["jitter_s"] = float(jitter)
        sql.set_variables(con, {"jitter_s": float(jitter)})
        step("gaps")
        # The gap stream is numpy on one core, the stages that do not need it are DuckDB SQL: the
        # stream runs on its own connection to the same database while those stages run.
        gap_con = con.cursor()
        sql.set_variables(gap_con, variables)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        bundle_future, models_beside = None, True
        if engine.name == "spark":  # window functions over the rows where they lie, no stream
            fit = None
            gap_future = pool.submit(gaps_sql.compute, gap_con, ctx.rows, ctx.t0_s, ctx.t1_s, settings.window_s)
        else:
            codings = gaps.stage_codes(requests, ctx.rows, ctx.grouping)
            fit = _bundle_fit(requests, settings, ctx, codings["group"]) if with_bundle and ctx.rows else None
            # an agent trace's model opens a DuckDB database of its own (bundle/agents.py): it waits
            # until the stages' one is closed, so two memory limits are never spent at once
            from servetrace.bundle.agents import has_turns

            models_beside = not has_turns(requests)
            gap_future = pool.submit(row_stream.one_pass, gap_con, ctx.rows, codings, ctx.t0_s, ctx.t1_s,
                                     settings.window_s, jitter, ctx.sample_p, settings.stages, fit)
        try:
            for staging in ("stg_group_windows", "stg_top_groups", "stg_group_length_counts"):
                sql.run_sql(con, staging)
            reuse = reuse_of(requests, ctx, con)  # block reuse: the prefix stage's, and sessions' without ids
            if fit is not None:  # the fit's second pass and models follow the stream on its thread
                bundle_future = pool.submit(_fitted, gap_future, fit, Path(requests), settings, reuse,
                                            codings["group"], models_beside)
            results = {name: _run_stage(requests, name, stage, step) for name, stage in (
                ("lengths", lambda: lengths(con, ctx)),
                ("rate over time", lambda: periodicity(con, ctx)),
                ("sessions", lambda: sessions(con, ctx, reuse)),
                ("reasoning", lambda: reasoning(con, ctx)),
                ("multimodal", lambda: multimodal(con, ctx)),
                ("prefix", lambda: prefix(con, ctx, reuse)),
                ("agents", lambda: agents(con, ctx)))}
            gap = gap_future.result()
            gap_con.close()
            con.register("window_gaps", gap.window_gaps.to_arrow())
            con.register("group_gaps", gap.group_gaps.to_arrow())
            window_rates = sql.table(con, "window_rates", order_by="window_idx")
            results.update({name: _run_stage(requests, name, stage, step) for name, stage in (
                ("quality", lambda: quality(con, ctx, grid, window_rates, gap)),
                ("arrivals", lambda: arrivals(con, ctx, window_rates, gap)),
                ("clients", lambda: clients(con, ctx)),
                ("failures", lambda: failures(con, ctx)))})
            bundle = bundle_future.result() if bundle_future is not None else None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            gap_con.close()
        if engine.name == "spark" and with_bundle and ctx.rows:  # the set-based fit, where the rows lie
            from servetrace.bundle import fit_sql
            from servetrace.bundle.fit import source_of, with_reuse_models

            bundle = with_reuse_models(fit_sql.fit_on(con, settings, ctx.grouping, source_of(Path(requests)),
                                                      ingest_of(ctx.meta)), Path(requests), settings, reuse, con)
        found.append(_trace_finding(ctx, meta, trace_info or {}))
        for name in STAGES[2:]:  # findings in the published order
            result, produced = results[name]
            found.extend(result if isinstance(result, list) else [result])
            tables.update(produced)
    tables.setdefault("window_rates", window_rates)
    run_settings = record(settings, ctx.group_by, ingest_of(ctx.meta))
    if fit is not None and not models_beside:
        from servetrace.bundle.fit import with_models

        bundle = with_models(bundle, Path(requests), settings, reuse, codings["group"], fit.counted)
    return assemble(found, run_settings), tables, bundle


def _fitted(stream: concurrent.futures.Future, fit: Fit, requests: Path, settings: Settings, reuse, groups,
            models: bool) -> dict:
    """The bundle once the row stream (`stream`, the fit's first pass) is done: its second pass and,
    `models`, its models."""
    from servetrace.bundle.fit import with_models

    stream.result()  # its error is the stages' to raise; the fit is not finished on half a pass
    # the arrival model's imports, during the second pass: on a large input they wait for the row
    # stream's end, past its peak RSS (on a small one they were made during the ingest)
    with late_imports.joined(late_imports.thread()):
        bundle = fit.finish(read.file_batches(requests))
    return with_models(bundle, requests, settings, reuse, groups, fit.counted) if models else bundle


def _bundle_fit(requests, settings: Settings, ctx: Context, groups) -> Fit:
    """The bundle fit of the stages' grouping and first arrival (`servetrace fit` finds the same)."""
    from servetrace.bundle import fit
    from servetrace.stats import clock

    columns = fit.fit_columns(Path(requests), settings.group_by)
    batches = read.file_batches(Path(requests))
    out = fit.Fit(columns, settings, fit.source_of(Path(requests)), ctx.grouping, groups, ctx.t0_s,
                  fit.category_of(batches, columns), ingest_of(ctx.meta), clock.clock_of_batches(batches, settings))
    out.count_bins = True  # the arrival model's bins counted on its second pass, not on a read of their own
    return out


def with_arrival_model(findings: dict, bundle: dict) -> dict:
    """findings with the bundle's chosen arrival model and its candidates' evidence in `arrivals`."""
    from servetrace.bundle.arrival_finding import arrival_model_finding

    if "absent" in findings.get("arrivals", {"absent": ""}):
        return findings
    entry = rounded(arrival_model_finding(bundle.get("arrival_model")))
    return {**findings, "arrivals": {**findings["arrivals"], "arrival_model": entry}}


def _run_stage(requests, name: str, stage: Callable, step: Callable[[str], None]):
    step(name)
    try:
        return stage()
    except duckdb.Error as exc:  # a stage the data cannot support must not sink the others
        raise ServetraceError(f"{requests}: stage {name} failed: {str(exc).splitlines()[0]}") from None


def _trace_finding(ctx: Context, meta: dict, info: dict) -> Finding:
    def num(key: str) -> int | None:
        v = info.get(key, meta.get(f"servetrace.{key}"))
        return int(v) if v not in (None, "") else None

    values = {
        "rows_read": num("rows_read"),
        "rows_kept": ctx.rows,
        "rows_rejected": num("rows_rejected"),
        "span_s": ctx.span_s,
        "first_arrival_s": ctx.t0_s,
        "last_arrival_s": ctx.t1_s,
        "format": info.get("format", meta.get("servetrace.format")),
        "sha256": info.get("sha256", meta.get("servetrace.sha256")),
        "source": meta.get("servetrace.source"),
        "origin": meta.get("servetrace.origin"),
        "columns_present": sorted(c[:-5] for c, v in ctx.profile.items() if c.endswith("_rows") and v
                                  and c != "failed_rows"),
    }
    statement = (f"{ctx.rows:,} requests kept of {values['rows_read'] or ctx.rows:,} read over "
                 f"{ctx.span_s / 3600:.3g} h ({values['format'] or 'unknown'} format).")
    return Finding("trace", values, statement, [])


def write_outputs(out_dir: Path, findings: dict, tables: dict[str, pl.DataFrame]) -> None:
    """tables/ replaced as a whole, then findings.json: each atomically, so readers never see half.
    Tables another command wrote there (validate, provision) are carried over, as their reports are."""
    # Each table names the trace it describes (as findings.json and requests.parquet do): after a
    # run killed between two writes, a report refuses outputs of two traces side by side.
    trace = {io.TRACE_SHA: sha} if (sha := findings.get("trace", {}).get("sha256")) else {}
    with io.atomic_dir(out_dir / TABLES, replace_any=True) as tmp:
        for name, frame in sorted(tables.items()):
            io.write_parquet(tmp / f"{name}.parquet", frame.to_arrow(), {"servetrace.table": name, **trace})
        for old in sorted((out_dir / TABLES).glob("*.parquet")):
            if not (tmp / old.name).exists() and _written_by_another(old):
                shutil.copy2(old, tmp / old.name)
    io.write_json(out_dir / FINDINGS, findings)


def _written_by_another(path: Path) -> bool:
    try:
        return io.parquet_metadata(path).get(io.WRITTEN_BY, "characterize") != "characterize"
    except Exception:  # noqa: BLE001 - an unreadable leftover is not carried over
        return False


@contextlib.contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str], None]]:
    if quiet:
        yield lambda name: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(TextColumn("characterize: {task.description:<15}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("starting", total=len(STAGES))

        def step(name: str) -> None:
            bar.update(task, description=name, completed=STAGES.index(name) if name in STAGES else 0)

        yield step
        bar.update(task, completed=len(STAGES))


def characterize(trace: str | Path, out_dir: str | Path, settings: Settings | None = None,
                 ingest_settings: IngestSettings | None = None, quiet: bool = False,
                 engine: Engine | None = None) -> dict:
    """Ingest `trace` into `out_dir` (reused when unchanged), run every stage, write the outputs.

    Returns a summary: the ingest summary's row counts, paths, tables written and the statements.
    """
    from servetrace.ingest import ingest_trace
    from servetrace.bundle.model import save_bundle
    from servetrace.report import write_report

    from servetrace.bundle.cli_support import is_pool_input

    settings = settings or Settings()
    ingest_settings = ingest_settings or IngestSettings()
    check_settings(settings)
    out_dir = Path(out_dir)
    if is_pool_input(trace, ingest_settings.format):
        return _characterize_pool(trace, out_dir)
    # One lock from ingest to report: no other run can swap the request table in between.
    timings: dict[str, float] = {}  # wall seconds of each part, for `--json` readers such as `make bench`
    clock = time.perf_counter()

    def lap(part: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[part] = round(now - clock, 3)
        clock = now

    with io.output_lock(out_dir), late_imports.joined(late_imports.thread(trace)):
        summary = ingest_trace(trace, out_dir, ingest_settings, memory_limit=settings.memory_limit, engine=engine)
        lap("ingest")
        requests = Path(summary.get("requests") or out_dir / REQUESTS)
        if not requests.exists():
            raise ServetraceError(f"{trace}: ingest produced no request table to characterize")
        with _progress(quiet) as step:
            findings, tables, bundle = _characterize(requests, settings, summary, step, out_dir, with_bundle=True,
                                                     engine=engine)
            lap("stages")
            if bundle is None:
                from servetrace.bundle.fit import source_of

                raise ServetraceError(f"{source_of(requests).get('path')}: no requests to fit")
            write_outputs(out_dir, with_arrival_model(findings, bundle), tables)
            save_bundle(out_dir / BUNDLE, bundle)  # DIR/bundle.json: the fitted workload parameters
            lap("bundle")
            write_report(out_dir)  # last: it shows the bundle
            lap("report")
    statements = {k: v["statement"] for k, v in findings.items() if isinstance(v, dict) and "statement" in v}
    return {
        "source": summary.get("source"),
        "format": summary.get("format"),
        "rows_read": summary.get("rows_read"),
        "rows_kept": summary.get("rows_kept"),
        "rows_rejected": summary.get("rows_rejected"),
        "cached": bool(summary.get("cached")),
        "report": str(out_dir / REPORT),
        "findings": str(out_dir / FINDINGS),
        "bundle": str(out_dir / BUNDLE),
        "tables_dir": str(out_dir / TABLES),
        "tables": sorted(tables),
        "absent": {k: v["absent"] for k, v in findings.items() if isinstance(v, dict) and "absent" in v},
        "statements": statements,
        "timings_s": timings,
    }


def _characterize_pool(pool: str | Path, out_dir: Path) -> dict:
    """A ServeGen pool holds fitted per-client parameters, not requests: it is imported as the
    bundle (as `ingest` does) and no request-level stage runs; the summary says so."""
    from servetrace.bundle.cli_support import servegen_to_bundle

    imported = servegen_to_bundle(pool, out_dir)
    return {
        "source": str(pool),
        "format": "servegen",
        "bundle": imported["bundle"],
        "imported": imported,
        "characterized": False,
        "not_characterized": "a ServeGen pool holds fitted per-client parameters, not requests: no stage ran "
                             "and no findings.json, tables/ or report.html were written; "
                             f"`servetrace generate {out_dir} --out TRACE.parquet` makes requests to characterize",
    }


def load_findings(out_dir: str | Path) -> dict:
    return json.loads((Path(out_dir) / FINDINGS).read_text(encoding="utf-8"))
