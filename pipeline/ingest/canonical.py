"""The SQL that turns a raw trace into the canonical table and its rejects, inside DuckDB.

Three steps, all set-based:
1. `raw`: every record of the file as text (CSV fields, a JSON line, Parquet columns), in file
   order; records the CSV reader cannot split go to DuckDB's own reject table.
2. `typed`: each canonical column parsed from its source column, and the first reason a record
   is unusable (missing, non-numeric, negative ... value), or NULL when it is kept.
3. `typed` is read once, as a stream in file order (pipeline/ingest/stream.py): kept rows go to
   Parquet, refused record numbers to `refused`; the rejects get their source line numbers and
   text here, from `refused`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import duckdb

from servetrace.errors import ServetraceError
from servetrace.ingest.formats import FormatSpec
from servetrace.ingest.source import Source
from servetrace.ingest.queries import statement
from servetrace.schema import COLUMNS, HASH_IDS, SQL_TYPES

INT_MAX = 2**31 - 1
UNIT_SCALE = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
MAX_LINE_BYTES = 1 << 23  # 8 MiB: a longer line is a reject, not a crash (a larger bound would
# make DuckDB read the file in a few huge buffers, on one core)
READ_BUFFER_BYTES = 16 * MAX_LINE_BYTES  # DuckDB's default, 16 x the line limit (128 MiB buffers). At 4 x
# (32 MiB, a little less memory to fault in) DuckDB 2.0 drops a 100 MB line without a word: it is neither
# a row nor a reject (tests/test_bad_inputs.py, "a 100 MB single line")
INT_COLUMNS = [c for c in COLUMNS if SQL_TYPES[c] == "INTEGER"]
TEXT_COLUMNS = [c for c in COLUMNS if SQL_TYPES[c] == "VARCHAR"]
DURATION_COLUMNS = [c for c in COLUMNS if SQL_TYPES[c] == "DOUBLE" and c != "arrival_s"]
FLAG_COLUMNS = [c for c in COLUMNS if SQL_TYPES[c] == "BOOLEAN"]
# Columns of a flattened intermediate (pipeline/ingest/agentic): the source line a call came from,
# the source text it came from, why the record was unusable before any column was read, and where
# in a record of several calls the call sits.
LINE, RECORD, PROBLEM, ITEM = "_line", "_record", "_problem", "_item"
MAX_TEXT_BYTES = 4096  # an id or model name longer than this is refused, not carried into every output
HASH_LIST_RE = r"\s*\[\s*(-?\d+(\.0*)?\s*(,\s*-?\d+(\.0*)?\s*)*)?\]\s*"
MAX_RECORD_CHARS = 1 << 16  # rejects.parquet keeps the first 64 Ki characters of a refused record


def clipped(text: str) -> str:
    """SQL: the record `text`, past MAX_RECORD_CHARS cut there and the cut marked with its length."""
    return (f"case when length({text}) > {MAX_RECORD_CHARS} then left({text}, {MAX_RECORD_CHARS}) || "
            f"' [cut: ' || length({text}) || ' characters in all]' else {text} end")


def lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class RawLayout:
    """How raw records are numbered: line = rec + header_lines + structural rejects before."""

    header_lines: int
    has_structural_rejects: bool
    column_of: dict[str, str]  # source column name -> column of the raw table
    flattened: bool = False  # an agentic format's intermediate: lines and records in its own columns


def text_lines(src: Source) -> str:
    """The file's physical lines, one VARCHAR `j` each in order (a blank line is null)."""
    comp = lit({"none": "none", "gzip": "gzip", "zstd": "zstd"}[src.compression])
    return statement("text_lines", path=lit(str(src.path)), compression=comp, max_line=MAX_LINE_BYTES,
                     buffer=READ_BUFFER_BYTES)


def jsonl_keys(con: duckdb.DuckDBPyConnection, src: Source) -> Source:
    """`src` with the keys of every JSON object in the file, in order of first appearance: an
    optional field present only in later records is read, and the first record decides nothing."""
    keys = con.execute(statement("jsonl_keys", lines=text_lines(src))).fetchall()
    return replace(src, header=[k for (k,) in keys])


def cause(exc: Exception) -> str:
    """DuckDB's message up to its dump of reader options: the error and its explanation."""
    lines = []
    for line in str(exc).strip().splitlines():
        if line.strip().startswith("file =") or (lines and not line.strip()):
            break
        lines.append(line.strip())
    return " ".join(lines) or type(exc).__name__


def load_raw(con: duckdb.DuckDBPyConnection, src: Source, spec: FormatSpec, serial: bool = False) -> RawLayout:
    """`serial`: DuckDB's parallel CSV reader cannot pad short rows across a quoted newline."""
    path = lit(str(src.path))
    comp = lit({"none": "none", "gzip": "gzip", "zstd": "zstd"}[src.compression])
    try:
        if src.container == "csv":
            # Positional names: a header may repeat a name or hold characters SQL dislikes.
            cols = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(src.header)))
            con.execute(statement("raw_csv", path=path, delimiter=lit(src.delimiter), columns=cols, compression=comp,
                                  max_line=MAX_LINE_BYTES, buffer=READ_BUFFER_BYTES,
                                  serial=", parallel=false" if serial else ""))
            column_of = {}
            for i, name in enumerate(src.header):
                column_of.setdefault(name, f"c{i}")
            return RawLayout(1, True, column_of)
        if src.container == "jsonl":
            keys = sorted(set(spec.json_paths) | ({spec.hash_ids} if spec.hash_ids else set()))
            fields = []
            column_of = {}
            for i, key in enumerate(keys):
                col = f"c{i}"
                column_of[key] = col
                if key == spec.hash_ids:
                    fields.append(f"case when ok then j -> {lit(key)} end as {col}")
                else:
                    fields.append(f"case when ok then j ->> {lit(key)} end as {col}")
            con.execute(statement("raw_jsonl", lines=text_lines(src), fields=", ".join(fields)))
            return RawLayout(0, True, column_of)
        con.execute(statement("raw_parquet", path=path))
        return RawLayout(0, False, {name: name for name in src.header}, spec.flattened)
    except duckdb.Error as exc:
        raise ServetraceError(f"{src.path}: cannot read as {src.container}: {cause(exc)}") from None


def _value(layout: RawLayout, spec: FormatSpec, canonical: str) -> str | None:
    src_col = spec.columns.get(canonical)
    if src_col is None:
        return None
    return f"cast({ident(layout.column_of[src_col])} as varchar)"


def _int_checks(name: str, v: str, d: str, required: bool) -> list[tuple[str, str]]:
    """(condition, reason) pairs for a token count `v` parsed as `d`, in the order they are tested."""
    missing = f"{v} is null or trim({v}) = ''"
    checks = [(missing, f"missing {name}")] if required else []
    present = f"not ({missing})"
    return checks + [
        (f"{d} is null and {present}", f"non-numeric {name}"),
        (f"not isfinite({d})", f"non-finite {name}"),
        (f"{d} < 0", f"negative {name}"),
        (f"{d} <> floor({d})", f"non-integer {name}"),
        (f"{d} > {INT_MAX}", f"{name} out of range"),
    ]


def _time_expr(v: str, unit: str) -> str:
    if unit == "datetime":
        return f"epoch(try_cast({v} as timestamptz))"
    if unit == "s":
        return f"try_cast({v} as double)"
    return f"try_cast({v} as double) * {UNIT_SCALE[unit]!r}"


EPOCH_S = (1e8, 1e10)  # 1973 .. 2286: where an epoch timestamp in the guessed unit must land


def guess_time_unit(con: duckdb.DuckDBPyConnection, layout: RawLayout, spec: FormatSpec,
                    numbered: bool = False) -> tuple[str, bool]:
    """A generic file's timestamp unit, from the first records' values, when not given; and whether
    the guess rests on epoch magnitudes (then a value in another unit is refused, not misread).
    `numbered`: the raw records carry their number `rec`, and "first" is by it (Spark)."""
    if spec.time_unit != "auto":
        return spec.time_unit, False
    v = _value(layout, spec, "arrival_s")
    order = "order by rec" if numbered else ""
    numeric, total, typical = con.execute(statement("time_unit_probe", value=v, order=order)).fetchall()[0]
    if total and numeric < 0.5 * total:
        return "datetime", False
    typical = typical or 0.0
    # Epoch magnitudes: seconds ~1.7e9, ms ~1.7e12, us ~1.7e15, ns ~1.7e18. The median, so that
    # a minority of values in another unit does not decide the unit of the majority.
    unit = "ns" if typical > 1e17 else "us" if typical > 1e14 else "ms" if typical > 1e11 else "s"
    scaled = typical * UNIT_SCALE[unit]
    return unit, EPOCH_S[0] <= scaled <= EPOCH_S[1]


def build_typed(con: duckdb.DuckDBPyConnection, layout: RawLayout, spec: FormatSpec, unit: str, src: Source,
                epoch: bool = False, numbered: bool | None = None, nul_checks: bool = True,
                trimmed: tuple[str, ...] = ()) -> None:
    """Create the view `typed`: parsed canonical values, and the first reason a record is refused
    (NULL if kept). Each source value is parsed once (layer `p`), then tested.
    `epoch`: the unit was guessed from epoch magnitudes; a timestamp outside EPOCH_S is refused.
    `numbered`: the raw records carry their number `rec` (JSON lines; every container on Spark).
    `nul_checks`: refuse a text value holding a NUL byte; without, its reader must (stream.py does,
    for the columns of `nul_checked`, and reads again with the checks when it finds one).
    `trimmed`: text columns (of `reader_trimmed`) left as their source values: their reader trims
    them and makes an empty value null, as `nullif(trim(v), '')` would (stream.py, `Trim`)."""
    parsed: dict[str, str] = {}  # name in layer p -> expression over raw
    checks: list[tuple[str, str]] = []
    values: dict[str, str] = {}  # canonical column -> expression over p
    fine_optional: list[str] = []  # conditions under which no check below can fire
    if src.container == "csv":
        # A header line repeated inside the file (files concatenated with their headers).
        same = " and ".join(f"{ident(c)} = {lit(n)}" for n, c in list(layout.column_of.items())[:3])
        checks.append((f"coalesce({same}, false)", "repeated header line"))
    if src.container == "jsonl":
        checks.append(("not valid", "not valid JSON"))
        checks.append(("not ok", "not a JSON object"))
    t_raw = _value(layout, spec, "arrival_s")
    parsed["t"] = _time_expr(t_raw, unit)
    checks.append((f"{t_raw} is null or trim({t_raw}) = ''", "missing timestamp"))
    checks.append(("t is null", "unparsable timestamp"))
    checks.append(("not isfinite(t)", "non-finite timestamp"))
    checks.append(("t < 0", "negative timestamp"))
    fine = ["t >= 0", "isfinite(t)"]
    if epoch:
        lo, hi = EPOCH_S
        checks.append((f"t not between {lo!r} and {hi!r}", f"timestamp not in {unit} like the rest of the file"))
        fine.append(f"t between {lo!r} and {hi!r}")
    values["arrival_s"] = "t"
    for name in INT_COLUMNS:
        v = _value(layout, spec, name)
        if v is None:
            values[name] = "null"
            continue
        parsed[f"d_{name}"] = f"try_cast({v} as double)"
        checks += _int_checks(name, v, f"d_{name}", name in spec.required)
        ok = f"d_{name} between 0 and {INT_MAX} and d_{name} = floor(d_{name})"
        fine_optional.append(ok if name in spec.required else f"({ok} or {v} is null)")
        values[name] = f"try_cast(d_{name} as bigint)"
    for name in TEXT_COLUMNS:
        v = _value(layout, spec, name)
        values[name] = "null" if v is None else v if name in trimmed else f"nullif(trim({v}), '')"
        if v is not None:
            checks.append((f"strlen({v}) > {MAX_TEXT_BYTES}", f"{name} longer than {MAX_TEXT_BYTES} bytes"))
            if nul_checks:
                checks.append((f"contains({v}, chr(0))", f"NUL byte in {name}"))
                fine_optional.append(f"coalesce(strlen({v}) <= {MAX_TEXT_BYTES} and not contains({v}, chr(0)), true)")
            else:
                fine_optional.append(f"coalesce(strlen({v}) <= {MAX_TEXT_BYTES}, true)")
    if spec.service_map == "logtype" and "service" in spec.columns:
        # BurstGPT Log Type: 'Conversation log' -> 'conversation', 'API log' -> 'api'.
        # Equality on the two known values first: far cheaper per row than string functions.
        raw_service = _value(layout, spec, "service")
        general = f"lower({values['service']})"
        values["service"] = (
            f"case {raw_service} when 'Conversation log' then 'conversation' when 'API log' then 'api' "
            f"else case when {general} like '% log' then left({general}, -4) else {general} end end"
        )
    for name in DURATION_COLUMNS:  # seconds, >= 0, optional
        lat = _value(layout, spec, name)
        values[name] = "null"
        if lat is None:
            continue
        d = "d_latency" if name == "latency_s" else f"d_{name}"
        parsed[d] = f"try_cast({lat} as double)"
        present = f"{lat} is not null and trim({lat}) <> ''"
        checks.append((f"{present} and ({d} is null or not isfinite({d}))", f"non-numeric {name}"))
        checks.append((f"{d} < 0", f"negative {name}"))
        values[name] = d
        fine_optional.append(f"({d} >= 0 and isfinite({d}) or {lat} is null)")
    for name in FLAG_COLUMNS:
        flag = _value(layout, spec, name)
        # failed: filled from spec.failed once the columns are typed; other flags stay unknown
        values[name] = "null"
        if flag is None:
            continue
        b = f"b_{name}"
        parsed[b] = f"try_cast(lower(trim({flag})) as boolean)"
        checks.append((f"{b} is null and {flag} is not null and trim({flag}) <> ''", f"unparsable {name} flag"))
        values[name] = f"coalesce({b}, false)" if name == "failed" else b
        fine_optional.append(f"({b} is not null or {flag} is null)")
    if spec.hash_ids:
        h = ident(layout.column_of[spec.hash_ids])
        # As written, a list of integers (no fraction, no string, no nesting), each one fitting
        # int64: a list DuckDB would coerce (round 1.5, null a string or 2^64) is refused.
        parsed["h"] = (f"case when regexp_full_match(cast({h} as varchar), '{HASH_LIST_RE}') "
                       f"then try_cast({h} as bigint[]) end")
        h_ok = f"(h is not null and list_count(h) = array_length(h))"
        checks.append((f"not coalesce({h_ok}, false) and {h} is not null and cast({h} as varchar) <> 'null'",
                       "hash_ids not a list of integers"))
        values[HASH_IDS] = "h"
        fine_optional.append(f"({h_ok} or {h} is null)")
    if spec.parent_link:
        chat, parent = spec.parent_link
        values["chat_id"] = f"trim(cast({ident(layout.column_of[chat])} as varchar))"
        values["parent_chat_id"] = f"trim(cast({ident(layout.column_of[parent])} as varchar))" if parent else "null"
    # Most records are fine: one cheap test passes them, the full chain runs on the others only.
    fine += fine_optional
    if src.container == "jsonl":
        fine.append("ok")
    reason = (
        f"case when {' and '.join(fine)} then null else case "
        + " ".join(f"when {cond} then {lit(why)}" for cond, why in checks)
        + " end end"
    )
    if spec.flattened:
        # A record the format's own reader could not turn into a call says why in `_problem`.
        problem = ident(layout.column_of[PROBLEM])
        reason = f"coalesce({problem}, {reason})"
    p_select = ", ".join(f"{expr} as {name}" for name, expr in parsed.items())
    v_select = ", ".join(f"{expr} as {name}" for name, expr in values.items())
    # JSON lines carry their own record number (blank lines are dropped after numbering); CSV and
    # Parquet records are numbered by their position in the stream that reads them.
    con.execute(statement("typed", parsed=p_select, reason=reason, values=v_select,
                          rec="rec, " if (src.container == "jsonl" if numbered is None else numbered) else ""))


def nul_checked(spec: FormatSpec) -> tuple[str, ...]:
    """The text columns whose NUL check a reader of `typed` can make on the values it receives (a
    canonical value holds a NUL byte exactly when its source value does: trim, nullif, lower and
    the Log Type mapping neither add nor remove one); none when chat links stand in for ids."""
    if spec.parent_link:
        return ()
    return tuple(name for name in TEXT_COLUMNS if spec.columns.get(name) is not None)


def reader_trimmed(spec: FormatSpec) -> tuple[str, ...]:
    """The text columns whose `nullif(trim(v), '')` a reader of `typed` can make on the kept values
    it receives (most values need nothing, which one look at each value's first and last byte
    shows): the source's text columns but a mapped service (BurstGPT's Log Type reads the trimmed
    value) and those of chat links."""
    if spec.parent_link:
        return ()
    return tuple(name for name in TEXT_COLUMNS if spec.columns.get(name) is not None
                 and not (name == "service" and spec.service_map))


def build_reject_records(con: duckdb.DuckDBPyConnection, layout: RawLayout, src: Source) -> None:
    """Create `reject_records` (rec, record): the source text of refused records. It takes a second
    read of the file, so it is done only when something was refused."""
    numbered = "raw" if src.container == "jsonl" else "(select row_number() over () as rec, * from raw)"
    if src.container == "jsonl":
        record = "j"
    elif layout.flattened:
        record = ident(RECORD)
    else:
        raw_cols = dict.fromkeys(layout.column_of.values())
        record = "concat_ws(',', " + ", ".join(f"coalesce(cast({ident(c)} as varchar), '')" for c in raw_cols) + ")"
    # a flattened format's reader clipped its records already (a call's own JSON, marked where cut)
    con.execute(statement("reject_records", record=record if layout.flattened and src.container != "jsonl"
                          else clipped(record), numbered=numbered))
