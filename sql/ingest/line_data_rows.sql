-- (rec, u): refused raw row `rec` sits at line (or unit) u, the rec-th one after `first` that is
-- not in `skips` (a select of `line`). Skip number j at s_j has c_j = s_j - first - j data rows
-- before it, so raw row i sits at i + first + max{{j : c_j < i}}. Filled in by Python: skips, first.
with numbered as (select line - {first} - row_number() over (order by line) as c,
                         row_number() over (order by line) as j from ({skips}) where line > {first}),
steps as (select c, max(j) as j from numbered group by c)
select refused.rec, refused.rec + {first} + coalesce(steps.j, 0) as u
from refused asof left join steps on refused.rec > steps.c
