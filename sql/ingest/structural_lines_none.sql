-- No record the reader could not read: an empty `line` select.
select null::bigint as line where false
