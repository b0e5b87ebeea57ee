-- fit_cross_ranks: per client (grain: client), over its requests with every joint field: their
-- number and the sums of products of centred midranks of each pair of joint fields (x12, x13,
-- x23: Spearman's numerators; x13 and x23 null when the category has two joint fields).
with final as (
    select
        l.client,
        count(*) as requests,
        sum(r1.rank_c * r2.rank_c) as x12,
        sum(r1.rank_c * r3.rank_c) as x13,
        sum(r2.rank_c * r3.rank_c) as x23
    from fit_length_rows as l
    inner join fit_midranks as r1 on r1.client = l.client and r1.slot = 1 and r1.value = l.j1
    inner join fit_midranks as r2 on r2.client = l.client and r2.slot = 2 and r2.value = l.j2
    left join fit_midranks as r3 on r3.client = l.client and r3.slot = 3 and r3.value = l.j3
    where l.joint
    group by l.client
)

select * from final
