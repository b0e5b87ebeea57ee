-- The summary's count of refused rows per reason, most frequent first.
select reason, count(*) as n from refused group by reason order by 2 desc, 1
