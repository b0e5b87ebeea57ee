"""The source records the agentic readers start from, as SQL: numbered JSON lines or JSON files."""

from __future__ import annotations

from servetrace.ingest.canonical import MAX_LINE_BYTES, MAX_RECORD_CHARS

# Columns every intermediate carries besides the canonical ones (see __init__.py).
EXTRA = ("_line", "_record", "_problem")


def jsonl_records(path: str, compression: str) -> str:
    """One row per non-blank line: `_line` (1-based, blank lines counted), `j` (the text), and
    `_problem` when the line is not a JSON object."""
    return f"""
        select line as _line, j, left(j, {MAX_RECORD_CHARS}) as _record,
               case when not json_valid(j) then 'not valid JSON'
                    when json_type(j) <> 'OBJECT' then 'not a JSON object' end as _problem
        from (select row_number() over () as line, j from read_csv({path}, header=false,
                  columns={{'j': 'VARCHAR'}}, delim=E'\\x1f', quote='', escape='', auto_detect=false,
                  compression={compression}, max_line_size={MAX_LINE_BYTES}))
        where j is not null and trim(j) <> ''"""


def json_file_records(glob: str) -> str:
    """One row per file matching `glob`, in name order: `_line` is the file's number from 1."""
    return f"""
        select row_number() over (order by filename) as _line, filename, content as j,
               left(filename || ': ' || content, {MAX_RECORD_CHARS}) as _record,
               case when not json_valid(content) then 'not valid JSON'
                    when json_type(content) <> 'OBJECT' then 'not a JSON object' end as _problem
        from read_text({glob})"""


def needing_list(records: str, key: str) -> str:
    """`records` with a `_problem` also where the object's `key` is not a JSON list."""
    return f"""
        select _line, j, _record,
               coalesce(_problem, case when coalesce(json_type(j, '$.{key}'), 'NULL') <> 'ARRAY'
                                       then '{key} is not a list' end) as _problem
        from ({records})"""


def scaled(text: str, factor: float) -> str:
    """A number written as text, times `factor`, as text; text that is no number is kept as it is
    (so the checks refuse it as non-numeric)."""
    return (f"case when try_cast({text} as double) is null then {text} "
            f"else cast(try_cast({text} as double) * {factor!r} as varchar) end")


def problem_rows(source: str, columns: tuple[str, ...]) -> str:
    """The records of `source` with a `_problem`, as rows of the intermediate (every column null)."""
    nulls = ", ".join(f"null::varchar as {c}" for c in columns)
    return f"select _line, _record, _problem, {nulls} from {source} where _problem is not null"
