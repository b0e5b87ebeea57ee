-- raw (CSV): every column as VARCHAR under a positional name (c0, c1, ...: a header may repeat a
-- name or hold characters SQL dislikes); unreadable rows go to DuckDB's reject tables.
-- Filled in by Python: path, delimiter, the columns, compression, line limit, the read buffer (by
-- default DuckDB makes it 16 times the longest line allowed: 128 MiB, each one fresh memory) and
-- `serial` (DuckDB's parallel reader cannot pad short rows across a quoted newline).
create temp view raw as select * from read_csv({path},
    header=true, auto_detect=false, delim={delimiter}, quote='"', escape='"',
    columns={{{columns}}}, null_padding=true, store_rejects=true, ignore_errors=true,
    compression={compression}, max_line_size={max_line}, buffer_size={buffer}{serial})
