-- up: Bailian's parent links, one row per chat_id, for pointer jumping (ingest/parents.py). A chat
-- is a root when a parent link of it is null, empty, -1, itself or a chat the trace does not hold;
-- a root points at itself, any other chat at its parent. Filled in by Python: `staged` (the
-- streamed rows' Parquet).
create or replace temp table up as
with ok as (select chat_id, parent_chat_id as parent from read_parquet({staged}) where chat_id is not null),
known as (select distinct chat_id from ok),
links as (
    select chat_id,
           bool_or(parent is null or parent in ('', '-1') or parent = chat_id
                   or parent not in (select chat_id from known)) as is_root,
           min(parent) as parent
    from ok group by chat_id
)
select chat_id, is_root, case when is_root then chat_id else parent end as up from links
