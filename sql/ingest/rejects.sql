-- rejects.parquet: one row per refused record (the line an editor shows, where in the line a
-- refused call sits (`item`), the reason, the record's text): typed refusals (`refused`,
-- `reject_records`) and unreadable records (`structural`) together, by line then source order.
-- Filled in by Python: the line lookup (`lines`), the unreadable records' select
-- (`structural`), the output path and the source's sha256.
copy (
    with lines as ({lines}),
    typed_rejects as (select rec, lines.line, lines.item, r.reason, rr.record from refused r
                      join lines using (rec) join reject_records rr using (rec)),
    structural as ({structural})
    select cast(line as bigint) as line, item, reason, record from
        (select * from typed_rejects
         union all select null as rec, line, null::varchar as item, reason, record from structural)
    order by line, rec
) to {path} (format parquet, compression zstd, kv_metadata {{'servetrace.sha256': {sha}}})
