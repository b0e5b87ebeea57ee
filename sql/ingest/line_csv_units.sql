-- CTEs over a CSV file's irregular lines (blank ones, and ones a quote character makes other than
-- "keep the quote state": ingest/quotes.py): `blank_units` (u: DuckDB's line number of each blank
-- line outside quotes) and `shifts` (ua, after: a DuckDB line past ua is `after` lines further
-- down the file, for the quoted newlines before it). A line's state (inside a quoted field or
-- not) is the value the last constant line before it leaves, flipped once per flipping line
-- between (`k` packs the constant line, its value and the flips' parity up to it). The reader takes
-- the first line as the header, blank or not. A fragment: statements start `with` it. Filled in by
-- Python: the file's lines (`text_lines`) and the two patterns of a line's effect (`opens`:
-- starting outside a quoted field it ends inside one; `stays_open`: starting inside, it ends inside).
effects as (select p, j is null as blank, coalesce(regexp_full_match(j, {opens}), false) as c,
                   coalesce(regexp_full_match(j, {stays_open}), true) as o
            from (select row_number() over () as p, j from {text_lines})
            where j is null or contains(j, '"')),
irregular as (select p, blank, c, o, c = o and not blank as const, c and not o as flip
              from effects where blank or not o or c),
counted as (select *, sum(flip::int) over (order by p rows between unbounded preceding and current row) as cf
            from irregular),
keyed as (select *, max(case when const then p * 4 + c::int * 2 + cf % 2 end)
                        over (order by p rows between unbounded preceding and 1 preceding) as k
          from counted),
marked as (select *, case when k is null then (cf - flip::int) % 2 = 1
                          else (k // 2 % 2 = 1) <> ((cf - flip::int + k % 2) % 2 = 1) end as inside
           from keyed),
changes as (select p, inside from marked where not blank and inside <> (case when inside then o else c end)),
opens as (select p as a, lead(p) over (order by p) as b, inside from changes),
pairs as (select a, b, sum(b - a) over (order by a) as after from opens where not inside and b is not null),
shifts as (select a - (after - (b - a)) as ua, after from pairs),
blank_units as (select blanks.p - coalesce(pairs.after, 0) as u
                from (select p from marked where blank and not inside) blanks
                asof left join pairs on blanks.p > pairs.b),
