-- requests.parquet rewritten from the streamed rows when the stream alone could not finish them:
-- sorted by arrival (ties in file order) when the input was not, the origin moved, Bailian
-- sessions joined from `roots`. Filled in by Python: the canonical columns (`fields`), the
-- staged Parquet (`src`), the join, the order, the output path and its key-value metadata.
copy (select {fields} from read_parquet({src}, file_row_number = true) t {join} {order})
to {path} (format parquet, compression snappy, kv_metadata {{{kv}}})
