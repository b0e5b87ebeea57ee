-- stg_requests: one row per kept request of requests.parquet (a view: a pure projection).
-- Adds its offset from the first arrival, its analysis window, its group (the --group-by key,
-- or the best available grouping, pipeline/grouping.py; `key_part` is the client and/or session id
-- part of the group's name when the key uses them, which with model and service names the group:
-- see sql/macros.sql), and two deterministic uniforms on [0, 1) drawn from a hash
-- of the row number and the seed: `u` selects samples, `u_jitter` de-rounds timestamps; and a
-- 64-bit hash of the row, from which the gaps stage counts exact duplicate rows.
-- The uniforms are a portable hash both engines compute bit for bit (their own hash functions
-- differ): bigint arithmetic and bit operations that never overflow. The row number's low 32
-- bits, xor a key of the seed (seed x 0x61C88647 + 0x85EBCA6B mod 2^32; the jitter's key from
-- seed + 1), plus its high bits x 0x61C88647, mod 2^32, go through MurmurHash3's 32-bit finalizer
-- (h ^= h >> 16; h *= 0x85EBCA6B; h ^= h >> 13; h *= 0xC2B2AE35; h ^= h >> 16, products mod 2^32
-- taken in 16-bit halves), divided by 2^32. Every bit operation is parenthesized: the engines rank
-- them differently against + and *.
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

keyed as (
    select
        *,
        (xor(file_row_number & 4294967295,
             ((((getvariable('seed') % 4294967296) + 4294967296) % 4294967296) * 1640531527 + 2246822507) & 4294967295)
         + (((file_row_number >> 32) * 1640531527) & 4294967295)) & 4294967295 as h_u,
        (xor(file_row_number & 4294967295,
             (((((getvariable('seed') + 1) % 4294967296) + 4294967296) % 4294967296) * 1640531527 + 2246822507) & 4294967295)
         + (((file_row_number >> 32) * 1640531527) & 4294967295)) & 4294967295 as h_jitter
    from source
),

shifted_16 as (
    select *, xor(h_u, h_u >> 16) as a_u, xor(h_jitter, h_jitter >> 16) as a_jitter
    from keyed
),

times_85ebca6b as (
    select
        *,
        ((((a_u * 34283) & 65535) << 16) + a_u * 51819) & 4294967295 as b_u,
        ((((a_jitter * 34283) & 65535) << 16) + a_jitter * 51819) & 4294967295 as b_jitter
    from shifted_16
),

shifted_13 as (
    select *, xor(b_u, b_u >> 13) as c_u, xor(b_jitter, b_jitter >> 13) as c_jitter
    from times_85ebca6b
),

times_c2b2ae35 as (
    select
        *,
        ((((c_u * 49842) & 65535) << 16) + c_u * 44597) & 4294967295 as d_u,
        ((((c_jitter * 49842) & 65535) << 16) + c_jitter * 44597) & 4294967295 as d_jitter
    from shifted_13
),

mixed as (
    select *, xor(d_u, d_u >> 16) as mixed_u, xor(d_jitter, d_jitter >> 16) as mixed_jitter
    from times_c2b2ae35
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
        mixed_u / 4294967296.0 as u,
        mixed_jitter / 4294967296.0 as u_jitter,
        -- equal for rows equal in every column
        hash(arrival_s, client_id, session_id, model, service, input_tokens, output_tokens, reason_tokens,
             image_count, image_tokens, latency_s, failed) as row_hash
    from mixed
)

select * from final
