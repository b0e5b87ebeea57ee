-- (rec, line, item) of a CSV file: a refused row's DuckDB line moved past the quoted newlines
-- before it. Filled in by Python: the irregular lines' CTEs (line_csv_units.sql) and the data
-- rows over blank lines and unreadable records (line_data_rows.sql).
with {csv_units}
units as ({data_rows})
select units.rec, units.u + coalesce(shifts.after, 0) as line, null::varchar as item
from units asof left join shifts on units.u > shifts.ua
