-- (line, reason, text): one row per record the reader itself could not read (reject_errors), its
-- error types and first message as the reason and the text DuckDB kept of it.
select line, 'unreadable record: ' || lower(string_agg(distinct error_type, '; ')) ||
       ' (' || first(error_message) || ')' as reason, trim(first(csv_line), E'\r\n') as text
from reject_errors group by line
