-- The `requests` view over a directory of Parquet parts (Spark's output): rows numbered in file
-- order across the parts (parts by name, then rows in each), as one file's `file_row_number`
-- counts them and as the Spark connection numbers them. Filled in by Python: the parts' paths
-- (`files`, a list literal) and each part's first row number in the table (`offsets`, from the
-- parts' footers).
create view requests as
select * exclude (filename, file_row_number),
       file_row_number + {offsets}[list_position({files}, filename)] as file_row_number
from read_parquet({files}, file_row_number = true, filename = true)
