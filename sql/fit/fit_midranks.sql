-- fit_midranks: per client and joint field (slot 1-3), the centred midrank of each value among
-- the client's requests that have every joint field (grain: client, slot, value): the mean rank
-- of the value's ties minus the mean rank (n + 1) / 2, as Spearman's rho ranks them.
with counts as (
    select client, slot, value, sum(n) as n
    from fit_length_counts
    where joint and slot is not null
    group by client, slot, value
),

final as (
    select
        client,
        slot,
        value,
        sum(n) over (partition by client, slot order by value rows between unbounded preceding and current row)
            - (n - 1) / 2.0
            - (sum(n) over (partition by client, slot) + 1) / 2.0 as rank_c
    from counts
)

select * from final
