-- The DuckDB line of each record the CSV reader itself could not read (its reject_errors).
select distinct line from reject_errors
