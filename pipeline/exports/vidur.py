"""Vidur trace CSV: `arrived_at,num_prefill_tokens,num_decode_tokens` (seconds from the first request;
token counts at least 1).

Vidur (microsoft/vidur vidur/request_generator/trace_replay_request_generator.py, main) reads these
three columns by name with pandas, casts the counts to int, clips them to >= 1, lowers the prefill
count so prefill + decode <= `max_tokens` (default 4096, vidur/config/config.py) and multiplies
`arrived_at` by `time_scale_factor` (2 = twice as slow). The sidecar gives the max_tokens that keeps
every request whole. The same file feeds Vidur's trace length generator
(trace_request_length_generator.py), which reads the two count columns and shuffles the rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from servetrace.exports.rows import read_rows, source_of, write_csv, write_sidecar
from servetrace.exports.tools import command

VIDUR_DEFAULT_MAX_TOKENS = 4096


def vidur_rows(rows: pl.DataFrame) -> pl.DataFrame:
    t0 = rows["arrival_s"].min()
    return rows.select(
        (pl.col("arrival_s") - t0).alias("arrived_at"),
        pl.col("input_tokens").clip(lower_bound=1).cast(pl.Int64).alias("num_prefill_tokens"),
        pl.col("output_tokens").clip(lower_bound=1).cast(pl.Int64).alias("num_decode_tokens"),
    )


def export_vidur(rows_path: Path, out: str | Path) -> dict:
    out = Path(out)
    rows = read_rows(rows_path)
    frame = vidur_rows(rows)
    write_csv(frame, out, float_precision=6)
    total = frame["num_prefill_tokens"] + frame["num_decode_tokens"]
    max_tokens = max(int(total.max()), VIDUR_DEFAULT_MAX_TOKENS)
    consumers = {
        "vidur": command("vidur", f"python -m vidur.main --request_generator_config_type trace_replay "
                                  f"--trace_request_generator_config_trace_file {out.name} "
                                  f"--trace_request_generator_config_max_tokens {max_tokens} "
                                  f"--trace_request_generator_config_time_scale_factor 1"),
        "vidur_lengths_only": command("vidur", f"--length_generator_config_type trace "
                                               f"--trace_request_length_generator_config_trace_file {out.name} "
                                               f"--trace_request_length_generator_config_max_tokens {max_tokens} "
                                               f"--synthetic_request_generator_config_num_requests {frame.height}"),
    }
    write_sidecar(out, {
        "format": "Vidur trace CSV", "timestamp_unit": "s", "time_origin": "first request",
        "source": source_of(rows_path), "requests": frame.height,
        "clamped_to_one": {"num_prefill_tokens": int((rows["input_tokens"] < 1).sum()),
                           "num_decode_tokens": int((rows["output_tokens"] < 1).sum())},
        "max_total_tokens": int(total.max()),
        "rows_over_default_max_tokens": int((total > VIDUR_DEFAULT_MAX_TOKENS).sum()),
        "consumers": consumers,
        "caveats": {
            "vidur": f"with the default max_tokens {VIDUR_DEFAULT_MAX_TOKENS} Vidur cuts the prefill of longer "
                     "requests; the execution-time predictor's prediction_max_tokens_per_request (default 4096) "
                     "must cover them too; time_scale_factor 2 replays twice as slow",
        },
    })
    return {"format": "vidur", "path": str(out), "requests": frame.height, "commands": consumers}
