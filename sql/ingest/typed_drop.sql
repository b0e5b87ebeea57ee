-- typed made again (with the NUL checks: a stream without them found a NUL byte).
drop view typed
