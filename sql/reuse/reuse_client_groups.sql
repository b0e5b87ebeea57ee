-- reuse_client_groups: sessions per bundle client and model group (grain: client, group): each
-- session's first request's client (session_first_clients.sql) and the place of its group in
-- `reuse_model_groups` (-1: none, or a group not in the model), for the prefix model's
-- per-client groups.
with sessions as (
    select f.client, coalesce(m.g, -1) as g
    from session_first_clients as f
    left join reuse_shared as s on s.row_id = f.row_id
    left join reuse_model_groups as m on m.example = s.example
),

final as (
    select client, g, count(*) as sessions
    from sessions
    group by client, g
)

select * from final
