-- The epoch times of a TraceLab round's timing events of the given kinds. An expression of
-- tracelab.sql. Filled in by Python: the kinds, a SQL list of event types.
list_transform(list_filter(s.timing_events, lambda e: e.event_type in {kinds}),
               lambda e: epoch(try_cast(e.timestamp as timestamptz)))
