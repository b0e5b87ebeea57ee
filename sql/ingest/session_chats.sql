-- chats: the streamed rows' Bailian links (chat_id, parent_chat_id), which session_links.sql
-- reads. Filled in by Python: `staged` (the streamed rows' Parquet).
create or replace temp view chats as
select chat_id, parent_chat_id from read_parquet({staged})
