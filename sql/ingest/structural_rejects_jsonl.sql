-- (line, reason, record) of the JSON lines the reader could not read. Filled in by Python: the
-- reasons (structural_reasons.sql) and the clipped record expression of `text`.
select line, reason, {record} as record from ({reasons})
