-- stg_requests: one row per kept request of requests.parquet (a view: a pure projection).
-- Adds its offset from the first arrival, its analysis window, its group (the --group-by key,
-- or the best available grouping, pipeline/grouping.py; `key_part` is the client and/or session id
-- part of the group's name when the key uses them, which with model and service names the group:
-- see sql/macros.sql), and two deterministic uniforms on [0, 1) drawn from a hash
-- of the row number and the seed: `u` selects samples, `u_jitter` de-rounds timestamps; and a
-- 64-bit hash of the row, from which the gaps stage counts exact duplicate rows.
with source as (
    select
        *,
        case getvariable('group_ids')
            when 'client_id' then coalesce(client_id, '(none)')
            when 'session_id' then coalesce(session_id, '(none)')
            when 'client_id,session_id' then coalesce(client_id, '(none)') || '|' || coalesce(session_id, '(none)')
        end as key_part
    from requests
),

final as (
    select
        file_row_number as row_id,
        arrival_s,
        arrival_s - getvariable('t0_s') as t_s,
        cast(floor((arrival_s - getvariable('t0_s')) / getvariable('window_s')) as bigint) as window_idx,
        group_key_of(coalesce(model, '(none)'), coalesce(service, '(none)'), key_part) as group_key,
        key_part,
        client_id,
        session_id,
        coalesce(model, '(none)') as model,
        coalesce(service, '(none)') as service,
        input_tokens,
        output_tokens,
        reason_tokens,
        image_count,
        image_tokens,
        latency_s,
        failed,
        hash(file_row_number, getvariable('seed')) / 18446744073709551616.0 as u,
        hash(file_row_number, getvariable('seed') + 1) / 18446744073709551616.0 as u_jitter,
        -- equal for rows equal in every column
        hash(arrival_s, client_id, session_id, model, service, input_tokens, output_tokens, reason_tokens,
             image_count, image_tokens, latency_s, failed) as row_hash
    from source
)

select * from final
