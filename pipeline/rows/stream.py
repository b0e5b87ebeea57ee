"""characterize's one pass over requests.parquet: the stages' gap statistics and the bundle fit's
first pass, fed the same batches of rows (DuckDB's stg_requests in file order), each on its own
thread. The bundle fit's second pass (its sums need the first pass's results) reads the file again
(`Fit.finish`), queued on the stream's thread by the caller (characterization.py) so it runs
beside the stages that remain."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from servetrace.arrays import numpy_of
from servetrace.rows import read
from servetrace.rows.codes import Codes
from servetrace.stages.gaps import ROW_SELECT, GapResults, GapStream

if TYPE_CHECKING:
    from servetrace.bundle.fit import Fit
    from servetrace.settings import StageSettings



def one_pass(con, rows: int, codings: dict[str, Codes], t0_s: float, t1_s: float, window_s: float, jitter_s: float,
             sample_p: float, t: StageSettings, fit: Fit | None = None) -> GapResults:
    """Every gap statistic of the trace and, given `fit`, its first pass (the seed variable must
    be set on `con`)."""
    n_windows = int(np.floor((t1_s - t0_s) / window_s)) + 1 if rows else 0
    seed = int(con.execute("select getvariable('seed')").fetchone()[0])  # stg_requests' uniforms' seed
    gap_stream = GapStream(codings, t0_s, n_windows, window_s, jitter_s, sample_p, t.per_window_n, t.top_gaps, seed)
    inputs = [c for c in (fit.inputs if fit else []) if c != "arrival_s"]
    query = f"select {', '.join([ROW_SELECT, *inputs])} from stg_requests"
    batches = read.ahead(read.query_batches(con, query))
    if fit is None:
        reader = _Arrivals(batches)
        read.run(reader, gap_stream)
    else:
        reader = fit.reader(batches)
        read.run(reader, gap_stream, fit.sums, fit.counts)
        fit.rows, fit.t1 = reader.rows, reader.last
    if reader.rows != rows:
        raise RuntimeError(f"stg_requests gave {reader.rows} rows, expected {rows}")
    return gap_stream.finish()


class _Arrivals:
    """Batches with their arrivals as numpy (what the gap statistics read beside the batch)."""

    def __init__(self, batches):
        self.batches, self.rows = batches, 0

    def __iter__(self):
        for b in self.batches:
            self.rows += b.num_rows
            yield _Batch(numpy_of(b.column("arrival_s")), b)


class _Batch:
    def __init__(self, t: np.ndarray, batch) -> None:
        self.t, self.batch = t, batch
