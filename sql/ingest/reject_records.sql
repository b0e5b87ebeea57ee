-- reject_records: the source text (`record`, clipped) of each refused record (`refused`). It
-- takes a second read of the file, so it runs only when something was refused. Filled in by
-- Python: the record's text expression and the numbered raw records.
create temp table reject_records as
select rec, {record} as record from {numbered}
where rec in (select rec from refused)
