-- up: Bailian's parent links, one row per chat_id, for pointer jumping (ingest/parents.py). A chat
-- is a root when a parent link of it is null, empty, -1, itself or a chat the trace does not hold;
-- a root points at itself, any other chat at its parent. Reads `chats` (the kept rows' chat_id
-- and parent_chat_id: a view each engine makes, session_chats.sql on DuckDB). Unknown parents by
-- a left join, not `not in (subquery)`, which Spark allows in a filter only.
create or replace temp table up as
with ok as (select chat_id, parent_chat_id as parent from chats where chat_id is not null),
known as (select distinct chat_id as known_id from ok),
links as (
    select ok.chat_id,
           bool_or(ok.parent is null or ok.parent in ('', '-1') or ok.parent = ok.chat_id
                   or known.known_id is null) as is_root,
           min(ok.parent) as parent
    from ok left join known on known.known_id = ok.parent
    group by ok.chat_id
)
select chat_id, is_root, case when is_root then chat_id else parent end as up from links
