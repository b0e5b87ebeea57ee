-- Baseten's Parquet traces (ingest/agentic/baseten.py): one row per request, every field as text
-- (a column the file lacks is null), read as a stream. Filled in by Python: the record text
-- (clipped), the line number (a row's place in the file), each field's expression and the source.
select {line} as _line, {record} as _record, null::varchar as _problem,
       {arrival_s} as arrival_s,
       {session_id} as session_id,
       {input_tokens} as input_tokens,
       {output_tokens} as output_tokens,
       {latency_s} as latency_s,
       {ttft_s} as ttft_s,
       {canceled} as canceled,
       {hash_ids} as hash_ids
from {source}
