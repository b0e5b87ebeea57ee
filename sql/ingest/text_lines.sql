-- The file's physical lines, one VARCHAR `j` each in order (a blank line is null): a table
-- function other statements read from. Filled in by Python: path, compression, line limit, read buffer.
read_csv({path}, header=false, columns={{'j': 'VARCHAR'}}, delim=E'\x1f', quote='',
         escape='', auto_detect=false, store_rejects=true, ignore_errors=true, compression={compression},
         max_line_size={max_line}, buffer_size={buffer})
