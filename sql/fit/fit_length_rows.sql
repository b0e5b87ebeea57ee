-- fit_length_rows: one row per request that did not fail (grain: row_id; a view), with the
-- length fields of every category (failed requests' lengths are not the workload's):
-- input_tokens, output_tokens; reason_ratio = reasoning / output tokens clipped to [0, 1] and
-- snapped to multiples of 1 / fit_reason_bins (ServeGen's grid); text_tokens = input - image
-- tokens (at least 0) and image_tokens = image tokens per image on requests with images. Rounding
-- is half to even, spelled out in arithmetic both engines run alike. `j1`..`j3` are the
-- category's joint fields (language: input, output; reason: input, output, ratio; multimodal:
-- text, images, output) and `joint` says the request has all of them.
with raw as (
    select
        row_id,
        client,
        dataset_idx,
        cast(input_tokens as bigint) as input_tokens,
        cast(output_tokens as bigint) as output_tokens,
        case
            when output_tokens > 0 and reason_tokens is not null
                then least(greatest(cast(reason_tokens as double) / output_tokens, 0.0), 1.0) * getvariable('fit_reason_bins')
        end as ratio_x,
        cast(coalesce(image_count, 0) as bigint) as image_count,
        cast(coalesce(image_tokens, 0) as bigint) as image_total
    from fit_rows
    where not failed
),

unrounded as (
    select
        *,
        case when input_tokens is not null then greatest(input_tokens - image_total, 0) end as text_tokens,
        case when image_count > 0 then cast(image_total as double) / image_count end as per_image_x
    from raw
),

rounded as (
    select
        *,
        case
            when ratio_x - floor(ratio_x) > 0.5 then floor(ratio_x) + 1
            when ratio_x - floor(ratio_x) < 0.5 then floor(ratio_x)
            when floor(ratio_x) % 2 = 0 then floor(ratio_x)
            else floor(ratio_x) + 1
        end / getvariable('fit_reason_bins') as reason_ratio,
        cast(case
            when per_image_x - floor(per_image_x) > 0.5 then floor(per_image_x) + 1
            when per_image_x - floor(per_image_x) < 0.5 then floor(per_image_x)
            when floor(per_image_x) % 2 = 0 then floor(per_image_x)
            else floor(per_image_x) + 1
        end as bigint) as image_tokens
    from unrounded
),

final as (
    select
        row_id,
        client,
        dataset_idx,
        input_tokens,
        output_tokens,
        reason_ratio,
        text_tokens,
        image_tokens,
        image_count,
        case when getvariable('fit_category') = 'multimodal' then cast(text_tokens as double)
             else cast(input_tokens as double) end as j1,
        case when getvariable('fit_category') = 'multimodal' then cast(image_count as double)
             else cast(output_tokens as double) end as j2,
        case getvariable('fit_category')
            when 'multimodal' then cast(output_tokens as double)
            when 'reason' then reason_ratio
        end as j3,
        case getvariable('fit_category')
            when 'language' then input_tokens is not null and output_tokens is not null
            when 'reason' then input_tokens is not null and output_tokens is not null and reason_ratio is not null
            else text_tokens is not null and output_tokens is not null
        end as joint
    from rounded
)

select * from final
