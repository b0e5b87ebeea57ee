-- CTEs over a CSV file's irregular lines (blank ones, and ones with an odd number of quote
-- characters): `blank_units` (u: DuckDB's line number of each blank line outside quotes) and
-- `shifts` (ua, after: a DuckDB line past ua is `after` lines further down the file, for the quoted
-- newlines before it). The reader takes the first line as the header, blank or not. A fragment:
-- statements start `with` it. Filled in by Python: the file's lines (`text_lines`).
irregular as (select p, j is null as blank,
                     coalesce((length(j) - length(replace(j, '"', ''))) % 2 = 1, false) as odd
              from (select row_number() over () as p, j from {text_lines})
              where j is null or (length(j) - length(replace(j, '"', ''))) % 2 = 1),
marked as (select *, coalesce(sum(odd::int) over (order by p rows between unbounded preceding
                                                  and 1 preceding), 0) % 2 = 1 as inside from irregular),
opens as (select p as a, lead(p) over (order by p) as b, inside from marked where odd),
pairs as (select a, b, sum(b - a) over (order by a) as after from opens where not inside and b is not null),
shifts as (select a - (after - (b - a)) as ua, after from pairs),
blank_units as (select blanks.p - coalesce(pairs.after, 0) as u
                from (select p from marked where blank and not inside) blanks
                asof left join pairs on blanks.p > pairs.b),
