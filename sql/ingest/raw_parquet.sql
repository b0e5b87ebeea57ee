-- raw (Parquet): the file as it is (its own column names and types).
create temp view raw as select * from read_parquet({path})
