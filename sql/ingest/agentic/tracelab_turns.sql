-- `parts` (every chunk's TraceLab rounds, in line order) with each round's turn: the rounds of its
-- session fed by a user message so far (at least 1), in round order. The window reads only the
-- narrow columns; a positional join puts its turns back beside the rows, both in line order.
-- Filled in by Python: the parts' path.
select p.* exclude (_from_user, _round), t.turn
from read_parquet({parts}) p positional join (
    select cast(greatest(1, sum(cast(_from_user as int)) over (
               partition by session_id order by _round, _line
               rows between unbounded preceding and current row)) as varchar) as turn
    from read_parquet({parts}) order by _line) t
