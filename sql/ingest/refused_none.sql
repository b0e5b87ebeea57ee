-- refused when the typed stream refused nothing: no rows, the same columns.
create or replace temp view refused as select null::bigint as rec, null::varchar as reason where false
