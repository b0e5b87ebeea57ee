-- up_next: one pointer jump, every chat pointing at its pointer's pointer; `moved` where that
-- changed anything (ingest/parents.py repeats it until nothing moves).
create or replace temp table up_next as
select u.chat_id, u.is_root, v.up, v.up <> u.up as moved
from up as u join up as v on v.chat_id = u.up
