-- The keys of every JSON object in the file, in order of first appearance (an optional field
-- present only in later records is read). Filled in by Python: the lines' table function.
select k from (select unnest(json_keys(j)) as k, row_number() over () as n from {lines}
    where json_valid(j) and json_type(j) = 'OBJECT') group by k order by min(n)
