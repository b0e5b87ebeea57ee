-- fit_client_names: one row per bundle client (grain: client): its index and name.
with final as (
    select distinct client, client_name
    from fit_clients
)

select * from final
