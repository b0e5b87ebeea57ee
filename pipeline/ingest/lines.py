"""The source line of each refused record: rejects.parquet's `line`, the line a text editor shows.

DuckDB's CSV reader numbers neither rows nor lines the way the file does: it skips blank lines
and reads a record holding quoted newlines as one line (its reject_errors.line counts blank lines
but not the lines inside quotes). The physical line of a record is recovered from the few
irregular lines only: blank lines, and lines with an odd number of quote characters (one opens a
quoted newline, the next one closes it; an escaped quote "" counts twice and changes nothing).
That takes one more read of the file, made only when something was refused.
"""

from __future__ import annotations

from servetrace.ingest.canonical import ITEM, LINE, RawLayout, clipped, ident, text_lines
from servetrace.ingest.source import Source

READER_CHARS = 10_000  # DuckDB's reject_errors.csv_line holds this much of an unreadable record


def _data_rows(skips: str, first: str) -> str:
    """(rec, u): refused raw row `rec` sits at line (or unit) u, the rec-th one after `first`
    that is not in `skips` (line). Skip number j at s_j has c_j = s_j - first - j data rows before
    it, so raw row i sits at i + first + max{j : c_j < i}."""
    return f"""
        with numbered as (select line - {first} - row_number() over (order by line) as c,
                                 row_number() over (order by line) as j from ({skips}) where line > {first}),
        steps as (select c, max(j) as j from numbered group by c)
        select refused.rec, refused.rec + {first} + coalesce(steps.j, 0) as u
        from refused asof left join steps on refused.rec > steps.c"""


def _csv_units(src: Source) -> str:
    """CTEs over the file's irregular lines: `blank_units` (u: DuckDB's line number of each blank
    line outside quotes), and `shifts` (ua, after: a DuckDB line past ua is `after` lines further
    down the file, for the quoted newlines before it). The reader takes the first line as the
    header, blank or not."""
    quotes = "(length(j) - length(replace(j, '\"', '')))"
    return f"""
        irregular as (select p, j is null as blank, coalesce({quotes} % 2 = 1, false) as odd
                      from (select row_number() over () as p, j from {text_lines(src)})
                      where j is null or {quotes} % 2 = 1),
        marked as (select *, coalesce(sum(odd::int) over (order by p rows between unbounded preceding
                                                          and 1 preceding), 0) % 2 = 1 as inside from irregular),
        opens as (select p as a, lead(p) over (order by p) as b, inside from marked where odd),
        pairs as (select a, b, sum(b - a) over (order by a) as after from opens where not inside and b is not null),
        shifts as (select a - (after - (b - a)) as ua, after from pairs),
        blank_units as (select blanks.p - coalesce(pairs.after, 0) as u
                        from (select p from marked where blank and not inside) blanks
                        asof left join pairs on blanks.p > pairs.b),"""


def line_numbers_sql(layout: RawLayout, src: Source) -> str:
    """SQL (rec, line, item): the source line of each row of `refused`, and where in the line it
    sits when a line holds several calls (an agentic format's `_item`; else null)."""
    if layout.flattened:  # the source line (or file) each call came from, and where in it
        item = ident(ITEM) if ITEM in layout.column_of else "null::varchar"
        return f"""select refused.rec, n.{ident(LINE)} as line, n.item from refused
                   join (select row_number() over () as rec, {ident(LINE)}, {item} as item from raw) n using (rec)"""
    structural = "select distinct line from reject_errors" if layout.has_structural_rejects else \
        "select null::bigint as line where false"
    if src.container != "csv":  # JSON lines: rec counts every line read, blank ones too
        return f"select rec, u as line, null::varchar as item from ({_data_rows(structural, str(layout.header_lines))})"
    return f"""
        with {_csv_units(src)}
        units as ({_data_rows(f'select u as line from blank_units union {structural}', str(layout.header_lines))})
        select units.rec, units.u + coalesce(shifts.after, 0) as line, null::varchar as item
        from units asof left join shifts on units.u > shifts.ua"""


def structural_rejects_sql(layout: RawLayout, src: Source) -> str:
    """SQL (line, reason, record): the records the reader itself could not read. DuckDB keeps the
    first READER_CHARS characters of such a record; a longer one is read again from its line."""
    if not layout.has_structural_rejects:
        return "select null::bigint as line, null::varchar as reason, null::varchar as record where false"
    rejects = """select line, 'unreadable record: ' || lower(string_agg(distinct error_type, '; ')) ||
                     ' (' || first(error_message) || ')' as reason, trim(first(csv_line), E'\\r\\n') as text
              from reject_errors group by line"""
    if src.container != "csv":
        return f"select line, reason, {clipped('text')} as record from ({rejects})"
    return f"""
        with {_csv_units(src)}
        rejects as ({rejects}),
        placed as (select rejects.line + coalesce(shifts.after, 0) as line, reason, text
                   from rejects asof left join shifts on rejects.line > shifts.ua),
        whole as (select p, j from (select row_number() over () as p, j from {text_lines(src)})
                  where p in (select line from placed where length(text) >= {READER_CHARS}))
        select line, reason, {clipped('coalesce(whole.j, text)')} as record
        from placed left join whole on whole.p = placed.line"""
