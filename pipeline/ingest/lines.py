"""The source line of each refused record: rejects.parquet's `line`, the line a text editor shows.

DuckDB's CSV reader numbers neither rows nor lines the way the file does: it skips blank lines
and reads a record holding quoted newlines as one line (its reject_errors.line counts blank lines
but not the lines inside quotes). The physical line of a record is recovered from the few
irregular lines only: blank lines, and lines with an odd number of quote characters (one opens a
quoted newline, the next one closes it; an escaped quote "" counts twice and changes nothing).
That takes one more read of the file, made only when something was refused. The statements are
sql/ingest/line_*.sql and structural_*.sql; this module picks and fills them.
"""

from __future__ import annotations

from servetrace.ingest.canonical import ITEM, LINE, RawLayout, clipped, ident, lit, text_lines
from servetrace.ingest.queries import statement
from servetrace.ingest.quotes import quote_patterns
from servetrace.ingest.source import Source

READER_CHARS = 10_000  # DuckDB's reject_errors.csv_line holds this much of an unreadable record


def _data_rows(skips: str, first: int) -> str:
    return statement("line_data_rows", skips=skips, first=first)


def _csv_units(src: Source) -> str:
    quotes = quote_patterns(src.delimiter)
    return statement("line_csv_units", text_lines=text_lines(src), opens=lit(quotes.opens),
                     stays_open=lit(quotes.stays_open))


def line_numbers_sql(layout: RawLayout, src: Source) -> str:
    """SQL (rec, line, item): the source line of each row of `refused`, and where in the line it
    sits when a line holds several calls (an agentic format's `_item`; else null)."""
    if layout.flattened:  # the source line (or file) each call came from, and where in it
        item = ident(ITEM) if ITEM in layout.column_of else "null::varchar"
        return statement("line_numbers_flattened", line=ident(LINE), item=item)
    structural = statement("structural_lines") if layout.has_structural_rejects else \
        statement("structural_lines_none")
    if src.container != "csv":  # JSON lines: rec counts every line read, blank ones too
        return statement("line_numbers_jsonl", data_rows=_data_rows(structural, layout.header_lines))
    units = _data_rows(f"select u as line from blank_units union {structural}", layout.header_lines)
    return statement("line_numbers_csv", csv_units=_csv_units(src), data_rows=units)


def structural_rejects_sql(layout: RawLayout, src: Source) -> str:
    """SQL (line, reason, record): the records the reader itself could not read. DuckDB keeps the
    first READER_CHARS characters of such a record; a longer one is read again from its line."""
    if not layout.has_structural_rejects:
        return statement("structural_none")
    if src.container != "csv":
        return statement("structural_rejects_jsonl", reasons=statement("structural_reasons"), record=clipped("text"))
    return statement("structural_rejects_csv", csv_units=_csv_units(src), reasons=statement("structural_reasons"),
                     text_lines=text_lines(src), reader_chars=READER_CHARS,
                     record=clipped("coalesce(whole.j, text)"))
