-- `parts` (a view of every TraceLab round, on Spark) with each round's turn (tracelab_turn.sql).
-- Filled in by Python: the turn.
select * exclude (_from_user, _round), {turn} as turn from parts
