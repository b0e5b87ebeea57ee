-- Each call's bundle client by its row: the call's grouping columns' values joined by '|', a null
-- as '(none)', as the fit names its clients (bundle/sessions.py client_index), looked up among the
-- bundle's (`names`: rows (name, index)); a call of no listed client is the default's, and one of
-- none (-1) is left out. Made where the rows lie, on either engine: no row reaches Python.
-- Filled in by Python: the name's expression over the grouping columns (label), the bundle's
-- clients as a VALUES list (names), the default.
with named as (
    select file_row_number as row_id, {label} as name from requests
),

clients as (
    select n.row_id, coalesce(b.idx, {default}) as client
    from named as n
    left join (values {names}) as b (name, idx) on b.name = n.name
)

select row_id, client from clients where client >= 0
