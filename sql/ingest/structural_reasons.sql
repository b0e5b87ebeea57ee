-- (line, reason, text): one row per record the reader itself could not read (reject_errors): its
-- error types in the order of DuckDB's error type enum (too many columns, unquoted value, ...,
-- invalid encoding), joined by '; ', then the first type's first message (by byte position), and
-- the text DuckDB kept of it. (Ordered: string_agg(distinct ...) alone joins them in any order.)
select line, 'unreadable record: ' || lower(string_agg(distinct error_type, '; ' order by error_type)) ||
       ' (' || first(error_message order by error_type, byte_position) || ')' as reason,
       trim(first(csv_line), E'\r\n') as text
from reject_errors group by line
