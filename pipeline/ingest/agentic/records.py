"""The source records the agentic readers start from, as SQL: numbered JSON lines or JSON files
(sql/ingest/agentic/*.sql, filled in here and by each reader).

A reader's SQL runs over one chunk of the source at a time (a range of lines, a group of files;
see agentic/__init__.py), so its memory is the chunk's, whatever the file size. Every JSON function
here runs on every row, wrapped in try() (NULL where the text is no JSON): DuckDB holds the memory
of a JSON function evaluated only under a CASE or COALESCE branch. Each step is read once (a CTE
read twice is held in memory): a record with a problem rides along as one null element of each list.
"""

from __future__ import annotations

from servetrace.ingest.canonical import MAX_LINE_BYTES, clipped, lit
from servetrace.ingest.queries import statement

EXTRA = ("_line", "_record", "_problem")


def numbered_lines(path: str, compression: str) -> str:
    """Every line of a text file with its number from 1 (blank lines counted)."""
    return statement("agentic/numbered_lines", path=path, compression=compression, max_line=MAX_LINE_BYTES,
                     buffer=2 * MAX_LINE_BYTES)


def line_range(lines: str, first: int, last: int) -> str:
    """Lines `first`..`last` of a Parquet file of numbered_lines (its row groups outside are skipped)."""
    return statement("agentic/line_range", lines=lines, first=int(first), last=int(last))


def jsonl_records(lines: str) -> str:
    """One row per non-blank line of `lines` (numbered_lines rows, e.g. a line_range): `_line`,
    `j` (the text), `_record` and `_problem` when the line is not a JSON object."""
    return statement("agentic/jsonl_records", lines=lines, record=clipped("j"))


def json_file_records(files: list[str], first: int = 1) -> str:
    """One row per file of `files` (in name order): `_line` is its number, `first` for the first."""
    listed = "[" + ", ".join(lit(f) for f in files) + "]"
    return json_text_records(statement("agentic/json_files", files=listed, before=int(first) - 1))


def json_text_records(texts: str) -> str:
    """One row per JSON text of `texts` (a relation of _line, filename, content), as json_file_records."""
    return statement("agentic/json_text_records", texts=texts, record=clipped("filename || ': ' || j"))


def typed(records: str, structure: str, key: str, keep_record: bool = False) -> str:
    """`records` with `s`, the object read with DuckDB's from_json into `structure` (fields as text;
    a value of another type reads as NULL), and a `_problem` also where `key` is not a list; the
    record's text is kept only where there is a problem unless `keep_record` (a good record that is
    unnested into many rows gives each its own text)."""
    record = "_record" if keep_record else "case when _problem is not null then _record end"
    return statement("agentic/typed_records", records=records, structure=structure, key=key, record=record)


def one_each(items: str) -> str:
    """The elements of list `items`, or one NULL where the row has a problem: unnest keeps the row."""
    return f"case when _problem is null then {items} else [null] end"


def scaled(text: str, factor: float) -> str:
    """A number written as text, times `factor`, as text; text that is no number is kept as it is
    (so the checks refuse it as non-numeric)."""
    return (f"case when try_cast({text} as double) is null then {text} "
            f"else cast(try_cast({text} as double) * {factor!r} as varchar) end")
