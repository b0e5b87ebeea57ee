-- One row per JSON file (in name order): `_line` is its number, `first` for the first. Filled in by
-- Python: the file list, first - 1, the record (cut past 64 Ki
-- characters, the cut marked).
select _line, j, {record} as _record,
       case when kind is null then 'not valid JSON' when kind <> 'OBJECT' then 'not a JSON object' end as _problem
from (select {before} + row_number() over (order by filename) as _line, filename, content as j,
             try(json_type(content)) as kind
      from read_text({files}))
