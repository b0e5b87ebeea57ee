-- (line, reason, record) of the CSV records the reader could not read, at the line an editor
-- shows. DuckDB keeps the first `reader_chars` characters of such a record; a longer one is read
-- again from its line. Filled in by Python: the irregular lines' CTEs (line_csv_units.sql), the
-- reasons (structural_reasons.sql), the file's lines, reader_chars and the clipped record
-- expression of `coalesce(whole.j, text)`.
with {csv_units}
rejects as ({reasons}),
placed as (select rejects.line + coalesce(shifts.after, 0) as line, reason, text
           from rejects asof left join shifts on rejects.line > shifts.ua),
whole as (select p, j from (select row_number() over () as p, j from {text_lines})
          where p in (select line from placed where length(text) >= {reader_chars}))
select line, reason, {record} as record
from placed left join whole on whole.p = placed.line
