-- The columns of the typed view that are the literal null (a canonical column the source does
-- not have): the stream leaves them out of its select and adds them as null arrays (ingest/stream.py).
select column_name from (describe typed) where column_type = '"NULL"'
