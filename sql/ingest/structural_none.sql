-- (line, reason, record) of unreadable records when the reader refused none.
select null::bigint as line, null::varchar as reason, null::varchar as record where false
