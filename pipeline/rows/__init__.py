"""The one row stream over requests.parquet.

`characterize` reads the rows once, in file (= arrival) order, in batches: each batch feeds the
stages' gap statistics (pipeline/stages/gaps.py) and the bundle fit's first pass
(pipeline/bundle/sums.py) on their own threads. Groups are integer codes read once from the
Parquet dictionary pages (codes.py); moments merge batch by batch (moments.py); batches come from
DuckDB, a Parquet file or a frame (read.py)."""
