-- For guessing a generic file's timestamp unit: of the first 10,000 raw values of the arrival
-- column (`value`), how many read as numbers, how many there are, and their median magnitude.
select count(try_cast({value} as double)), count({value}), median(abs(try_cast({value} as double)))
from (select * from raw limit 10000)
