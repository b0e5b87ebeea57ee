-- fit_length_counts: how often each value of each of the category's length fields occurs (grain:
-- client, dataset_idx, field, value, joint), over requests that did not fail; `joint`: the
-- requests have every joint field; `slot`: the field's place among the joint fields (1-3; null
-- for the others). Values are doubles (integers below 2^53 exactly); the caller casts them back.
with text_fields as (
    select client, dataset_idx, 'input_tokens' as field, 1 as slot, cast(input_tokens as double) as value, joint
    from fit_length_rows
    where getvariable('fit_category') in ('language', 'reason')
    union all
    select client, dataset_idx, 'output_tokens', case when getvariable('fit_category') = 'multimodal' then 3 else 2 end,
           cast(output_tokens as double), joint
    from fit_length_rows
    union all
    select client, dataset_idx, 'reason_ratio', 3, reason_ratio, joint
    from fit_length_rows
    where getvariable('fit_category') = 'reason'
),

image_fields as (
    select client, dataset_idx, 'text_tokens' as field, 1 as slot, cast(text_tokens as double) as value, joint
    from fit_length_rows
    where getvariable('fit_category') = 'multimodal'
    union all
    select client, dataset_idx, 'image_tokens', null, cast(image_tokens as double), joint
    from fit_length_rows
    where getvariable('fit_category') = 'multimodal'
    union all
    select client, dataset_idx, 'image_count', 2, cast(image_count as double), joint
    from fit_length_rows
    where getvariable('fit_category') = 'multimodal'
    union all
    select client, dataset_idx, field, null, 0.0, joint
    from fit_length_rows
    cross join (
        select 'audio_tokens' as field union all select 'video_tokens' union all select 'audio_count'
        union all select 'video_count'
    ) as absent
    where getvariable('fit_category') = 'multimodal'
),

final as (
    select client, dataset_idx, field, slot, value, joint, count(*) as n
    from (select * from text_fields union all select * from image_fields) as fields
    group by client, dataset_idx, field, slot, value, joint
)

select * from final
