-- A Copilot call's tool time: the wall-clock durations of its turn's tool batches whose
-- request_id is the call's message_id ("matches with message_id from LLM calls", schema.json),
-- summed, in seconds; 0 for a call that asked for no tools; the first duration that is not a number
-- is kept as text (a reject). An expression of copilot.sql.
case when batches is null or c.message_id is null then null
    else coalesce(list_filter(list_transform(list_filter(batches, lambda b: b.request_id = c.message_id),
                                             lambda b: b.duration_ms),
                              lambda d: d is not null and try_cast(d as double) is null)[1],
                  cast(coalesce(list_sum(list_transform(list_filter(batches, lambda b: b.request_id = c.message_id),
                                                        lambda b: try_cast(b.duration_ms as double))), 0)
                       * 0.001 as varchar)) end
