"""BurstGPT v1 schema CSV (`Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`),
the 6-column layout vLLM's `burstgpt` loader reads.

vLLM (vllm-project/vllm vllm/benchmarks/datasets.py, BurstGPTDataset): pandas reads the header,
keeps rows with `Model == "GPT-4"` and `Response tokens > 0` (by name), samples `--num-prompts`
rows (with replacement when there are fewer), and takes the lengths by position (columns 2 and 3).
It uses lengths only: arrivals come from `--request-rate` and `--burstiness`, so the sidecar gives
those for the kept rows. Every row is labelled GPT-4 and failed requests keep Response tokens 0,
so vLLM drops exactly the failures, as it does in the real files.
AIPerf 0.13.0 (aiperf/dataset/loader/burst_gpt.py) reads Timestamp (s), Request tokens and Response
tokens by name and turns every row into a request with max_tokens = Response tokens, which its Turn
model requires to be >= 1: one failed row (0) refuses the whole file, as it refuses BurstGPT's own
files with failures. So where the trace has failures a second file without them is written beside
the first, `<name>_without_fails.csv` (BurstGPT's own name for such files), and AIPerf is pointed
at it: it replays the successful requests at their times, the failed ones are not sent."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from servetrace.exports.rows import beside, read_rows, source_of, write_csv, write_sidecar
from servetrace.exports.tools import SERVER, command
from servetrace.stats import fidelity

COLUMNS = ("Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type")


BURSTGPT_MODELS = ("ChatGPT", "GPT-4")


def burstgpt_rows(rows: pl.DataFrame, t0: float | None = None, keep_models: bool = False) -> pl.DataFrame:
    """The rows in BurstGPT's schema, Timestamp in whole seconds from `t0` (default: the first
    arrival). Model: GPT-4 (what vLLM's loader keeps), or with `keep_models` the row's model where it
    is one of BurstGPT's own (a generated trace that reads like its source)."""
    t0 = rows["arrival_s"].min() if t0 is None else t0
    model = pl.lit("GPT-4")
    if keep_models and "model" in rows.columns:
        model = pl.when(pl.col("model").is_in(BURSTGPT_MODELS)).then(pl.col("model")).otherwise(model)
    service = pl.col("service") if "service" in rows.columns else pl.lit(None, dtype=pl.String)
    response = pl.when(pl.col("failed").fill_null(False)).then(0).otherwise(pl.col("output_tokens")).cast(pl.Int64)
    frame = rows.select(
        (pl.col("arrival_s") - t0).floor().cast(pl.Int64).alias("Timestamp"),
        model.alias("Model"),
        pl.col("input_tokens").cast(pl.Int64).alias("Request tokens"),
        response.alias("Response tokens"),
        service.alias("_service"),
    )
    log_type = (pl.when(pl.col("_service").is_in(["Conversation log", "API log"])).then(pl.col("_service"))
                .when(pl.col("_service").str.to_lowercase().str.contains("api")).then(pl.lit("API log"))
                .otherwise(pl.lit("Conversation log")))
    return frame.with_columns(
        (pl.col("Request tokens") + pl.col("Response tokens")).alias("Total tokens"), log_type.alias("Log Type")
    ).select(COLUMNS)


def vllm_arrivals(rows: pl.DataFrame, kept: pl.Series) -> dict:
    """`--num-prompts`, `--request-rate` and `--burstiness` (gamma shape 1/CV^2) of the rows vLLM keeps."""
    t = rows.filter(kept)["arrival_s"].to_numpy()
    span = float(t[-1] - t[0]) if t.size > 1 else 0.0
    cv = fidelity.iat_cv(t)
    return {"num_prompts": int(t.size), "request_rate": t.size / span if span > 0 else None,
            "burstiness": 1.0 / cv**2 if cv else None, "iat_cv": cv}


def export_burstgpt(rows_path: Path, out: str | Path) -> dict:
    out = Path(out)
    rows = read_rows(rows_path)
    frame = burstgpt_rows(rows)
    write_csv(frame, out)
    ok = frame["Response tokens"] > 0
    aiperf_file = out
    if not ok.all():  # AIPerf refuses a file holding a row with 0 response tokens
        aiperf_file = write_csv(frame.filter(ok), beside(out, "_without_fails.csv"))
    arr = vllm_arrivals(rows, ok)
    flags = f"--num-prompts {arr['num_prompts']}"
    if arr["request_rate"]:
        flags += f" --request-rate {arr['request_rate']:.6g}"
    if arr["burstiness"]:
        flags += f" --burstiness {arr['burstiness']:.6g}"
    consumers = {
        "vllm": command("vllm", f"vllm bench serve --dataset-name burstgpt --dataset-path {out.name} {flags}"),
        "aiperf": command("aiperf", f"aiperf profile --model MODEL --url {SERVER} --input-file {aiperf_file.name} "
                                    f"--custom-dataset-type burst_gpt_trace --fixed-schedule"),
    }
    write_sidecar(out, {
        "format": "BurstGPT v1 CSV", "timestamp_unit": "s (whole seconds from the first request)",
        "source": source_of(rows_path), "requests": frame.height,
        "model_column": "every row GPT-4 (vLLM's loader keeps only GPT-4 rows)",
        "failed_rows": int(rows["failed"].fill_null(False).sum()),
        "rows_vllm_keeps": arr["num_prompts"],
        "zero_request_tokens": int((frame["Request tokens"] < 1).sum()),
        "vllm_arrivals": arr,
        "aiperf_file": {"name": aiperf_file.name, "requests": int(ok.sum())},
        "consumers": consumers,
        "caveats": {
            "vllm": "lengths only, rows sampled at random (seeded): the Timestamp column and row order are not "
                    "replayed; arrivals are a gamma process at the rate and burstiness above; a row with 0 "
                    "Request tokens is sent as an empty prompt",
            "aiperf": "replays the Timestamp column (1 s resolution); it refuses any row with 0 Response tokens, "
                      + (f"so it reads {aiperf_file.name}, without the {int((~ok).sum())} failed rows: they are "
                         "not sent" if aiperf_file != out else "and this trace has none"),
        },
    })
    summary = {"format": "burstgpt", "path": str(out), "requests": frame.height, "commands": consumers}
    if aiperf_file != out:
        summary["without_fails"] = {"path": str(aiperf_file), "requests": int(ok.sum())}
    return summary
