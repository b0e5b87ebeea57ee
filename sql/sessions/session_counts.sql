-- session_counts: per session model (session_scoped's scope), its sessions, those under a shared
-- prefix, its requests and follow-ups, its turns summed, the follow-ups with a finite think time.
with final as (
    select
        scope,
        count(case when turn = 1 then 1 end) as sessions,
        count(case when turn = 1 and shared_tokens > 0 then 1 end) as grouped,
        count(*) as requests,
        count(case when turn > 1 then 1 end) as follow_ups,
        sum(case when turn = 1 then turns else 0 end) as turns_sum,
        count(case when turn > 1 and isfinite(think_s) then 1 end) as thinks
    from session_scoped
    group by scope
)

select * from final
