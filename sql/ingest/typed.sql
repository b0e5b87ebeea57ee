-- typed: each raw record parsed (`parsed`: the canonical values as the format reads them), its
-- refusal reason (null: kept) and the canonical columns (`values`); JSON lines carry their own
-- record number (`rec`), CSV and Parquet records are numbered by the stream that reads them.
create temp view typed as
with p as (select *, {parsed} from raw),
r as (select *, {reason} as reason from p)
select {rec}reason, {values} from r
