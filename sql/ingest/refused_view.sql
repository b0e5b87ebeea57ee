-- refused: the rows the typed stream refused (rec, reason), from the spill file it wrote.
-- Filled in by Python: the path.
create or replace temp view refused as select * from read_parquet({path})
