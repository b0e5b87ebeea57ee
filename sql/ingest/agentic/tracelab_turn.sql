-- A TraceLab round's turn: the rounds of its session fed by a user message so far (at least 1), in
-- round order (a round with no index last), then line order. An expression of tracelab_turns.sql
-- (DuckDB) and of the Spark ingest's window over every round (spark/agentic.py).
cast(greatest(1, sum(cast(_from_user as int)) over (
    partition by session_id order by _round asc nulls last, _line asc nulls last
    rows between unbounded preceding and current row)) as varchar)
