-- One row per non-blank line of `lines` (numbered lines, e.g. a line range): `_line`, `j` (the
-- text), `_record` and `_problem` when the line is not a JSON object. Filled in by Python: lines,
-- the record (cut past 64 Ki characters, the cut marked).
select line as _line, j, {record} as _record,
       case when kind is null then 'not valid JSON' when kind <> 'OBJECT' then 'not a JSON object' end as _problem
from (select line, j, try(json_type(j)) as kind from {lines}
      where j is not null and trim(j) <> '')
