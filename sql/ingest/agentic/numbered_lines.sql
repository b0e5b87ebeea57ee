-- Every line of a text file with its number from 1 (blank lines counted), written to Parquet first
-- so that the agentic readers can take them a range of lines at a time. The read buffer is set: by
-- default DuckDB makes it 16 times the longest line allowed (128 MiB per thread). Filled in by
-- Python: path, compression, the longest line and the buffer.
select row_number() over () as line, j from read_csv({path}, header=false,
    columns={{'j': 'VARCHAR'}}, delim=E'\x1f', quote='', escape='', auto_detect=false,
    compression={compression}, max_line_size={max_line}, buffer_size={buffer})
