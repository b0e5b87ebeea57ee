-- roots: Bailian's sessions, one row per chat_id whose pointer (after pointer jumping,
-- ingest/parents.py) reached a root: the tree of chats below a root is a session. A chat whose
-- links never reach one (a cycle, or below one) has no row: a session of its own.
create or replace temp table roots as
select u.chat_id, u.up as root from up as u join up as v on v.chat_id = u.up where v.is_root
