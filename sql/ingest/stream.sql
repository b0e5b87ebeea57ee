-- The rows the typed stream writes (ingest/stream.py): the refusal reason (null: kept) and the
-- canonical columns of each typed record, `rec` first for JSON lines. Filled in by Python: rec,
-- the reason expression (with the outlying-arrival bounds when a second read refuses them), the
-- canonical fields.
select {rec}{reason} as reason, {fields} from typed t
