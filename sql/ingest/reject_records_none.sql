-- reject_records when nothing was refused: no rows, the same columns.
create temp table reject_records (rec bigint, record varchar)
