-- (rec, line, item) of JSON lines: rec counts every line read, blank ones too, so a refused row's
-- line skips only the header and the unreadable records. Filled in by Python: the data rows
-- (line_data_rows.sql).
select rec, u as line, null::varchar as item from ({data_rows})
