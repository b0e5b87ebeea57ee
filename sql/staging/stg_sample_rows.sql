-- stg_sample_rows: one row per sampled request, its row_id: the rows whose seeded uniform `u` is
-- below `sample_p` (about `fit_sample` rows). The stages' samples (stg_length_sample,
-- stg_reason_sample) are these rows. On DuckDB the same rows are drawn in numpy from the same bits
-- (pipeline/rows/uniforms.py `sampled_rows`): the SQL hash costs ~0.3 s of CPU per 10 M rows.
with final as (
    select row_id from stg_requests where u < getvariable('sample_p')
)

select * from final
