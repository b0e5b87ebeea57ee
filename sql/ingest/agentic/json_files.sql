-- (_line, filename, content): one row per JSON file (in name order), `_line` its number, `first`
-- for the first. Filled in by Python: the file list and first - 1.
(select {before} + row_number() over (order by filename) as _line, filename, content from read_text({files}))
