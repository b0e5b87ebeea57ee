-- Lines `first`..`last` of a Parquet file of numbered lines (its row groups outside are skipped).
(select * from read_parquet({lines}) where line between {first} and {last})
