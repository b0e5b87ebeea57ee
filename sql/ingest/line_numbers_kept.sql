-- (rec, line, item) when nothing was refused: no lookup of source lines.
select rec, rec as line, null::varchar as item from refused
