-- `parts` (every chunk's TraceLab rounds, in line order) with each round's turn (tracelab_turn.sql).
-- The window reads only the narrow columns; a positional join puts its turns back beside the
-- rows, both in line order. Filled in by Python: the parts' path and the turn.
select p.* exclude (_from_user, _round), t.turn
from read_parquet({parts}) p positional join (
    select {turn} as turn
    from read_parquet({parts}) order by _line) t
