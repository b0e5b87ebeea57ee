-- reuse_requests: per request with blocks, at each re-blocking factor m (grain: m, request): its
-- block references and the leading ones an infinite prefix cache hits (every block up to it was
-- referenced by an earlier request: the position of its first never-seen block).
with first_seen as (
    select m, pid, min(row_id) as first_row_id
    from reuse_refs
    group by m, pid
),

final as (
    select
        r.m,
        r.row_id,
        count(*) as refs,
        coalesce(min(case when r.row_id = f.first_row_id then r.pos end), count(*)) as leading_hits
    from reuse_refs as r
    join first_seen as f on f.m = r.m and f.pid = r.pid
    group by r.m, r.row_id
)

select * from final
