-- (rec, line, item) of an agentic format's flattened calls: the source line (or file) each refused
-- call came from and where in it it sits. Filled in by Python: the line and item columns.
select refused.rec, n.{line} as line, n.item from refused
join (select row_number() over () as rec, {line}, {item} as item from raw) n using (rec)
