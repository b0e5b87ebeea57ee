"""Ingest: any raw trace -> DIR/requests.parquet (canonical, sorted) + DIR/rejects.parquet.

rows read = rows kept + rows rejected, always; the summary and the Parquet metadata say all three.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from servetrace import db, io
from servetrace.errors import ServetraceError
from servetrace.ingest.canonical import (
    build_reject_records,
    build_typed,
    cause,
    guess_time_unit,
    jsonl_keys,
    lit,
    load_raw,
    nul_checked,
    reader_trimmed,
)
from servetrace.ingest import agentic
from servetrace.ingest.formats import FormatSpec, format_spec
from servetrace.ingest.lines import line_numbers_sql, structural_rejects_sql
from servetrace.ingest.outliers import REASON as OUTLYING
from servetrace.ingest.outliers import outlying_cuts
from servetrace.ingest.parents import sessions_from_parents
from servetrace.ingest.queries import statement
from servetrace.ingest.source import Source, inspect_source, unpadded
from servetrace.ingest.stream import BATCH_ROWS as STREAM_BATCH_ROWS
from servetrace.ingest.stream import StreamResult, stream_typed
from servetrace.outputs import REJECTS, REQUESTS, SPILL
from servetrace.schema import CANONICAL, COLUMNS, HASH_IDS, SQL_TYPES
from servetrace.settings import IngestSettings

def cached_summary(out_dir: Path, sha256: str, settings: IngestSettings, engine_ok: bool = False) -> dict | None:
    """The summary of an earlier ingest of the same bytes with the same settings, if one is there;
    `engine_ok`: a table Spark wrote (a directory of parts) may be reused."""
    path = out_dir / REQUESTS
    if not (path.exists() and (out_dir / REJECTS).exists()):
        return None
    try:
        meta = io.parquet_metadata(path)
    except Exception:  # noqa: BLE001 - an unreadable old output is simply redone
        return None
    if meta.get("servetrace.sha256") != sha256:
        return None
    if path.is_dir() and not engine_ok:  # Spark's directory of parts: reused by Spark only
        return None
    if set(COLUMNS) - set(io.parquet_columns(path)):  # written before the canonical table grew
        return None
    if meta.get("servetrace.ingest_settings") != json.dumps(settings.to_dict(), sort_keys=True):
        return None
    summary = json.loads(meta.get("servetrace.summary", "{}"))
    if not summary:
        return None
    summary.update(cached=True, requests=str(path), rejects=str(out_dir / REJECTS))
    return summary


def _origin(spec: FormatSpec, unit: str, lo: float | None, path: Path | None = None) -> tuple[float, str]:
    """Seconds to subtract so that arrival_s counts from the trace origin, and its description."""
    if lo is None or spec.origin == "none":
        return 0.0, "first request (absolute time unknown)" if spec.name == "mooncake" else "source clock"
    if lo > LAST_DATE_S:
        raise ServetraceError(f"{path}: {_past_year_9999(lo, unit)}")
    day0 = _day0(lo)
    if unit == "datetime" or lo > 1e8:
        stamp = datetime.fromtimestamp(day0, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        zone = "as written in the trace" if unit == "datetime" else "UTC"
        return day0, f"{stamp} ({zone}), local midnight of day 0"
    return day0, f"source clock day {int(day0 // 86400)}, local midnight of day 0"


LAST_DATE_S = 253402300799.0  # 9999-12-31T23:59:59: past it a timestamp is in another unit
EPOCH_NOW_S = (1e8, 1e10)  # 1973 .. 2286


def _past_year_9999(lo: float, unit: str) -> str:
    """The unit a too-large first timestamp was most likely written in, said plainly."""
    read_as = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}.get(unit, unit)
    raw = lo / {"ms": 1e-3, "us": 1e-6, "ns": 1e-9}.get(unit, 1.0)
    likely = next((name for name, scale in (("ms", 1e3), ("us", 1e6), ("ns", 1e9))
                   if EPOCH_NOW_S[0] <= raw / scale <= EPOCH_NOW_S[1]), None)
    hint = (f"they look like {likely} epochs: give --format generic --time-unit {likely}" if likely
            else "give the unit with --format generic --time-unit s|ms|us|ns")
    return f"the first timestamp, {raw:.6g} read as {read_as}, is past the year 9999: a unit mismatch; {hint}"


def _day0(t: float) -> float:
    return math.floor(t / 86400.0) * 86400.0


PARENT_LINKED = ("session_id", "request_id", "parent_id")  # filled from chat links, not from typed


def _stream_select(spec: FormatSpec, numbered: bool, outside: str | None = None,
                   absent: frozenset[str] = frozenset()) -> tuple[str, pa.Schema]:
    """The select the stream reads ([rec,] reason, canonical columns with their final types) and
    the schema of the rows it writes (chat links ride along until sessions are resolved);
    `outside`: a condition on t.arrival_s refusing outlying arrivals; `absent`: typed columns that are
    the literal null, left out (the stream adds them as null arrays, not DuckDB row by row)."""
    fields = []
    schema = CANONICAL
    for name in COLUMNS:
        if name in absent and name != "failed" and not (spec.parent_link and name in PARENT_LINKED):
            continue
        if name == "failed":
            expr = f"coalesce(t.failed, {spec.failed.replace('output_tokens', 't.output_tokens')})"
        elif name == "session_id" and spec.parent_link:
            expr = "null"
        elif name == "request_id" and spec.parent_link:
            expr = "t.chat_id"
        elif name == "parent_id" and spec.parent_link:
            expr = "nullif(nullif(t.parent_chat_id, '-1'), t.chat_id)"  # -1: a root chat
        else:
            expr = f"t.{name}"
        # try_cast: a refused record's value may not fit the type; a kept one always does
        fields.append(f"try_cast({expr} as {SQL_TYPES[name]}) as {name}")
    if spec.hash_ids:
        fields.append(f"t.{HASH_IDS}")
        schema = schema.append(pa.field(HASH_IDS, pa.list_(pa.int64())))
    if spec.parent_link:
        fields += ["t.chat_id", "t.parent_chat_id"]
        schema = schema.append(pa.field("chat_id", pa.string())).append(pa.field("parent_chat_id", pa.string()))
    reason = f"coalesce(reason, case when {outside} then {lit(OUTLYING)} end)" if outside else "reason"
    return statement("stream", rec="rec, " if numbered else "", reason=reason, fields=", ".join(fields)), schema


def _rewrite_requests(con, staged: Path, path: Path, spec: FormatSpec, delta: float, ordered: bool,
                      meta: dict) -> None:
    """Rewrite the streamed rows when the stream alone could not finish them: sort unsorted input
    by arrival (ties in file order), move the origin when the first rows were not on its day,
    resolve Bailian sessions. Reads the Parquet just written, not the source again."""
    src = lit(str(staged))
    session, join = "t.session_id", ""
    if spec.parent_link:
        # A chat whose parent links never reach a root (a cycle) is a session of its own.
        con.execute(statement("session_chats", staged=src))
        session = f"coalesce({sessions_from_parents(con)}, t.chat_id)"
        join = "left join roots on roots.chat_id = t.chat_id"
    fields = []
    for name in COLUMNS:
        expr = {"arrival_s": f"t.arrival_s - {delta!r}", "session_id": session}.get(name, f"t.{name}")
        fields.append(f"cast({expr} as {SQL_TYPES[name]}) as {name}")
    if spec.hash_ids:
        fields.append(f"t.{HASH_IDS}")
    order = "" if ordered else "order by t.arrival_s, t.file_row_number"
    kv = ", ".join(f"{lit(k)}: {lit(v)}" for k, v in meta.items())
    con.execute(statement("requests", fields=", ".join(fields), src=src, join=join, order=order, path=lit(str(path)),
                          kv=kv))


def _write_rejects(con, path: Path, layout, src: Source, sha: str, rejected: bool) -> None:
    """rejects.parquet; the source lines are looked up only when something was refused."""
    lines = line_numbers_sql(layout, src) if rejected else statement("line_numbers_kept")
    structural = structural_rejects_sql(layout if rejected else replace(layout, has_structural_rejects=False), src)
    con.execute(statement("rejects", lines=lines, structural=structural, path=lit(str(path)), sha=lit(sha)))


def ingest_trace(
    trace: str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: IngestSettings | None = None,
    memory_limit: str | None = None,
    engine=None,
) -> dict:
    """Ingest `trace` into `out_dir`; reuse an earlier result when the source and settings match.
    `engine`: a `stages.engine.Engine`; Spark's ingest is `servetrace.spark.ingest`."""
    settings = settings or IngestSettings()
    trace, out_dir = Path(trace), Path(out_dir)
    if engine is not None and engine.name == "spark":
        from servetrace.spark.ingest import ingest_on_spark

        return ingest_on_spark(trace, out_dir, settings, engine)
    if settings.format == "servegen" or (trace.is_dir() and any(trace.glob("chunk-*-trace.csv"))):
        raise ServetraceError(f"{trace}: a ServeGen pool holds fitted parameters, not requests: "
                              "import it with `servetrace bundle from-servegen POOL_DIR --out DIR`")
    agent_format, src = _agent_format(trace, settings)
    # Hash the source while DuckDB reads it: the digest is needed first only when an earlier
    # output could be reused.
    hashing = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    sha_future = hashing.submit(agentic.source_sha256 if trace.is_dir() else io.sha256_file, trace)
    hashing.shutdown(wait=False)
    with io.output_lock(out_dir):
        if (out_dir / REQUESTS).exists():
            cached = cached_summary(out_dir, sha_future.result(), settings)
            if cached:
                return cached
        for name in (REQUESTS, REJECTS):  # Spark's directories of parts (servetrace.spark.ingest) make way
            if (out_dir / name).is_dir() and (out_dir / name / io.PARQUET_SIDECAR).exists():
                import shutil

                shutil.rmtree(out_dir / name)
        spill = out_dir / SPILL
        for serial in (False, True):
            con = db.connect(memory_limit=memory_limit, temp_dir=spill)
            try:
                shown = src.path if src is not None else trace
                compression = src.compression if src is not None else "none"
                spill.mkdir(parents=True, exist_ok=True)
                data = unpadded(src, spill / "unpadded.gz") if src is not None else None  # DuckDB refuses padding
                if agent_format:
                    # The format's reader flattens the source to one row per call; the checks read that,
                    # all of it under the limit less what the process holds.
                    flat = spill / "flat.parquet"
                    with agentic.held_under_limit(con, trace, agent_format, memory_limit) as budget:
                        agentic.flatten(con, agent_format, data.path if data else trace, compression, flat, budget)
                        budget(agentic.stream_margin(flat, STREAM_BATCH_ROWS), agentic.MIN_STREAM_BUDGET)
                        return _ingest(con, inspect_source(flat), agentic.spec(agent_format), sha_future, settings,
                                       out_dir, spill, shown, compression, serial)
                read = jsonl_keys(con, data) if data.container == "jsonl" else data
                spec = format_spec(read, settings.format, settings.mapping, settings.time_unit)
                return _ingest(con, read, spec, sha_future, settings, out_dir, spill, shown, compression, serial)
            except duckdb.OutOfMemoryException as exc:
                raise db.out_of_memory(trace, memory_limit, exc) from None
            except duckdb.Error as exc:
                if not serial and "parallel=false" in str(exc):
                    continue  # a quoted newline in a file with short rows: read it again, serially
                raise ServetraceError(f"{trace}: {cause(exc)}") from None
            finally:
                con.close()
                if spill.exists():
                    import shutil

                    shutil.rmtree(spill, ignore_errors=True)
        raise AssertionError("unreachable")


def _agent_format(trace: Path, settings: IngestSettings) -> tuple[str | None, Source | None]:
    """(the agentic format of `trace`, forced or detected, or None; the source sniffed, if a file)."""
    forced = settings.format if settings.format in agentic.NAMES else None
    if trace.is_dir():
        name = forced or (agentic.detect(trace, None, []) if settings.format == "auto" else None)
        if name is None:
            inspect_source(trace)  # says why a directory is not a trace
        if name != "cc-traces":
            raise ServetraceError(f"{trace}: is a directory; only a cc-traces directory is read as one")
        return name, None
    if forced == "cc-traces":  # one trace object in one (pretty-printed) file
        if not trace.exists():
            raise ServetraceError(f"{trace}: no such file")
        return forced, None
    try:
        src = inspect_source(trace, settings.max_decompress_ratio)
    except ServetraceError:
        if settings.format == "auto" and agentic.cctraces.one_trace_file(trace):
            return "cc-traces", None  # one pretty-printed trace object
        raise
    if settings.format == "auto" and src.first_record is None and agentic.cctraces.one_trace_file(trace):
        return "cc-traces", None  # one pretty-printed trace object: its first line alone is not JSON
    if forced:
        return forced, src
    if settings.format == "auto":
        return agentic.detect(trace, src.container, src.header), src
    return None, src


def failure_rule(spec: FormatSpec) -> str:
    """How the source marks a failed request: a column, a rule on the columns, or not at all."""
    if "failed" in spec.columns:
        return f"column {spec.columns['failed']}"
    return spec.failed if spec.failed != "false" else "none"


def _ingest(con, src: Source, spec: FormatSpec, sha_future, settings: IngestSettings, out_dir: Path,
            spill: Path, shown: Path, compression: str, serial: bool = False) -> dict:
    """`shown`: the path the user gave (an agentic format's rows come from its flattened copy);
    `serial`: read a CSV without DuckDB's parallel reader (quoted newlines with short rows)."""
    layout = load_raw(con, src, spec, serial)
    unit, epoch = guess_time_unit(con, layout, spec)
    # NUL bytes in text values are looked for in the stream's string buffers (one scan a column and
    # batch), not per value in SQL; a stream that finds one is read again with the SQL checks.
    nul_columns = nul_checked(spec)
    # Text values are trimmed by the stream, on the kept rows, where one look at their edge bytes
    # finds most need nothing (DuckDB's `trim` reads every character and copies every value).
    trimmed = reader_trimmed(spec)
    build_typed(con, layout, spec, unit, src, epoch, nul_checks=not nul_columns, trimmed=trimmed)
    numbered = src.container == "jsonl"
    absent = frozenset(r[0] for r in con.execute(statement("typed_null_columns")).fetchall())
    select, schema = _stream_select(spec, numbered, absent=absent)
    spill.mkdir(parents=True, exist_ok=True)
    refused_path = spill / "refused.parquet"
    facts: dict = {}

    def describe(res: StreamResult) -> dict[str, str]:
        """Everything the summary says, once the stream is counted; the Parquet metadata."""
        structural = 0
        if layout.has_structural_rejects:
            structural = con.execute(statement("structural_count")).fetchall()[0][0]
        if res.refused:
            con.execute(statement("refused_view", path=lit(str(refused_path))))
        else:
            con.execute(statement("refused_none"))
        rows_read = res.parsed + structural
        if rows_read == 0:
            raise ServetraceError(f"{shown}: no data rows (header only or empty)")
        reasons = dict(con.execute(statement("refused_reasons")).fetchall())
        if structural:
            reasons["unreadable record"] = structural
        shift, origin = _origin(spec, unit, res.lo, shown)
        sha = sha_future.result()
        summary = {
            "source": str(shown),
            "format": spec.name,
            "failure_rule": failure_rule(spec),
            "compression": compression,
            "sha256": sha,
            "rows_read": rows_read,
            "rows_kept": res.kept,
            "rows_rejected": rows_read - res.kept,
            "reject_reasons": reasons,
            "was_sorted": res.ordered,
            "time_unit": unit,
            "origin": origin,
            "origin_shift_s": shift,
            "columns": {k: v for k, v in sorted(spec.columns.items())},
            "cached": False,  # output locations are added on return, never stored in the table
        }
        facts.update(summary=summary, shift=shift, sha=sha)
        return {
            "servetrace.format": spec.name,
            "servetrace.failure_rule": failure_rule(spec),
            "servetrace.origin": origin,
            "servetrace.source": shown.name,
            "servetrace.sha256": sha,
            "servetrace.rows_read": str(rows_read),
            "servetrace.rows_kept": str(res.kept),
            "servetrace.rows_rejected": str(rows_read - res.kept),
            "servetrace.sorted_input": str(res.ordered).lower(),
            "servetrace.ingest_settings": json.dumps(settings.to_dict(), sort_keys=True),
            "servetrace.summary": json.dumps(summary, sort_keys=True),
        }

    def shift_for(lo: float) -> float:  # the origin of the first kept rows; checked at the end
        return _origin(spec, unit, lo, shown)[0]

    # Both files are written to temporaries first and renamed together, rejects first:
    # requests.parquet is the marker of a complete ingest for the cache.
    with io.atomic_path(out_dir / REQUESTS, ".parquet") as requests_tmp:
        with io.atomic_path(out_dir / REJECTS, ".parquet") as rejects_tmp:
            res = stream_typed(con, select, requests_tmp, schema, refused_path, numbered, shift_for, describe,
                               nul_columns, trimmed)
            if res.nul:
                con.execute(statement("typed_drop"))
                build_typed(con, layout, spec, unit, src, epoch)
                trimmed = ()
                res = stream_typed(con, select, requests_tmp, schema, refused_path, numbered, shift_for, describe)
            ends = res.ends if res.ordered else None  # then the first and last kept are the extremes
            low, high = outlying_cuts(con, requests_tmp, res.kept, settings.outliers, ends)
            if low is not None or high is not None:  # read again, refusing them like any bad record
                bounds = [f"t.arrival_s {op} {cut + res.shift!r}" for op, cut in (("<", low), (">", high)) if cut is not None]
                select, _ = _stream_select(spec, numbered, " or ".join(bounds), absent)
                res = stream_typed(con, select, requests_tmp, schema, refused_path, numbered, shift_for, describe,
                                   trim_columns=trimmed)
            summary, shift = facts["summary"], facts["shift"]
            if res.refused:
                build_reject_records(con, layout, src)
            else:
                con.execute(statement("reject_records_none"))
            _write_rejects(con, rejects_tmp, layout, src, facts["sha"], summary["rows_rejected"] > 0)
            if res.kept and (not res.ordered or spec.parent_link or shift != res.shift):
                staged = spill / "staged.parquet"
                os.replace(requests_tmp, staged)
                meta = io.parquet_metadata(staged)
                _rewrite_requests(con, staged, requests_tmp, spec, shift - res.shift, res.ordered, meta)
        if res.kept == 0:  # the rejects say why; the request table is left as it was
            raise ServetraceError(
                f"{shown}: no usable rows: all {summary['rows_read']:,} rejected ("
                + ", ".join(f"{r}: {n:,}" for r, n in list(summary["reject_reasons"].items())[:3])
                + f"); see {out_dir / REJECTS}"
            )
    return {**summary, "requests": str(out_dir / REQUESTS), "rejects": str(out_dir / REJECTS)}
