-- chain_parents: the request each request continues (grain: request with a parent), for sessions
-- inferred from prefix chains (reuse/chains.py's rule, as set-based SQL). A request q is *keyed*
-- by the prefix id of its last full block (input_tokens // reuse_block_size blocks; reuse_refs at
-- the source's block size); a request r continues q when q < r and one of r's blocks has q's key
-- (r's context starts with every full block of q). r's parent: of its blocks that some earlier key
-- matches, the deepest, and of the requests with that key, the latest; `reused`: the blocks up to
-- that one. The latest earlier key per block is a running max over the block's prefix id in row
-- order (a key after the blocks of its own request), so a key shared by many requests (a system
-- prompt alone) is never joined to every block that holds it.
with refs as (
    select row_id, pos, pid
    from reuse_refs
    where m = 1
),

keys as (
    select f.row_id as q, f.pid
    from refs as f
    join stg_requests as s on s.row_id = f.row_id
    where f.pos = cast(floor(coalesce(s.input_tokens, 0) / getvariable('reuse_block_size')) as bigint) - 1
),

events as (
    select pid, row_id, 0 as kind, pos, cast(null as bigint) as q
    from refs
    union all
    select pid, q as row_id, 1 as kind, cast(null as bigint) as pos, q
    from keys
),

matched as (
    select
        row_id,
        pos,
        kind,
        max(q) over (partition by pid order by row_id, kind rows between unbounded preceding and current row) as parent
    from events
),

deepest as (
    select
        row_id,
        pos,
        parent,
        row_number() over (partition by row_id order by pos desc) as rank_n
    from matched
    where kind = 0 and parent is not null
),

final as (
    select row_id, parent, pos + 1 as reused
    from deepest
    where rank_n = 1
)

select * from final
