-- roots: Bailian's sessions, one row per chat_id with the smallest root its parent links reach.
-- A session is the tree of chats below a root: a chat whose parent is null, empty, -1, itself or
-- a chat the trace does not hold. Filled in by Python: `staged` (the streamed rows' Parquet).
create temp table roots as
with recursive ok as (select chat_id, parent_chat_id from read_parquet({staged})),
walk(chat_id, root, depth) as (
    select chat_id, chat_id, 0 from ok
    where parent_chat_id is null or parent_chat_id in ('', '-1') or parent_chat_id = chat_id
       or parent_chat_id not in (select chat_id from ok where chat_id is not null)
    union all
    select ok.chat_id, walk.root, walk.depth + 1 from ok join walk on ok.parent_chat_id = walk.chat_id
    where ok.chat_id <> ok.parent_chat_id and walk.depth < 100000
)
select chat_id, min(root) as root from walk group by chat_id
