-- For guessing a generic file's timestamp unit: of the first 10,000 raw values of the arrival
-- column (`value`), how many read as numbers, how many there are, and their median magnitude.
-- `order`: empty where the reader keeps file order (DuckDB), `order by rec` where it does not
-- (Spark: records joined across quoted newlines come after the others).
select count(try_cast({value} as double)), count({value}), median(abs(try_cast({value} as double)))
from (select * from raw {order} limit 10000)
