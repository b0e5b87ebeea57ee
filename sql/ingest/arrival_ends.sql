-- The `limit` smallest (`order` asc) or largest (desc) arrivals of the kept rows, for the outlying
-- timestamps (ingest/outliers.py). Filled in by Python: path, order, limit.
select arrival_s from read_parquet({path}) order by arrival_s {order} limit {limit}
