-- The number of records the CSV reader itself could not read.
select count(distinct line) from reject_errors
