"""Bailian sessions: the chats linked by parent_chat_id, one session per tree."""

from __future__ import annotations

from servetrace.ingest.queries import statement

MAX_JUMPS = 64  # pointer doublings: chains up to 2^64 deep


def sessions_from_parents(con) -> str:
    """Bailian: a session is the tree of chats below a root (parent_chat_id -1, empty, the chat
    itself or unknown). Pointer jumping: every chat points at its parent, then at its pointer's
    pointer, until nothing moves: log2(depth) joins of the chats, however deep the chains (a
    recursive walk takes one step per turn). A chat whose links never reach a root (a cycle, or
    below one) is a session of its own. Reads the view `chats` (chat_id, parent_chat_id), which
    the caller makes on its engine (DuckDB, or Spark through spark/ingest.py's adapter); builds
    the table `roots` (chat_id, root)."""
    con.execute(statement("session_links"))
    for _ in range(MAX_JUMPS):
        con.execute(statement("session_jump"))
        moved = con.execute("select count(*) from up_next where moved").fetchall()[0][0]
        con.execute("create or replace temp table up as select chat_id, is_root, up from up_next")
        if not moved:
            break
    con.execute(statement("session_roots"))
    return "roots.root"
