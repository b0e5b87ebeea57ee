"""Timed JSONL (Mooncake style) for vLLM `timed_trace`, SGLang `mooncake`, AIPerf `mooncake_trace`
and guidellm `kind=mooncake`: `timestamp` int ms from the first request (non-decreasing),
`input_length` >= 1, `output_length` >= 1, `hash_ids` of ceil(input_length / B) ids. A sidecar
states unit, B, source, scaling and the command line each tool needs.

Rules from the loaders (see pipeline/exports/tools.py for the copies read):
- guidellm (src/guidellm/data/deserializers/trace_mooncake.py) refuses a row unless
  ceil(input_length / hash_id_block_size) == len(hash_ids), ids are >= 0 and fit int32, and it
  keeps a list indexed by id: a source's hash_ids are kept only where their count matches B
  (else the row gets fresh ids), and all ids are renumbered densely from 0 in order of first
  appearance (equal ids stay equal, so prefix sharing is unchanged).
- vLLM's TimedTrace expands each id to `--timed-trace-chunk-hash-size` tokens (default 16) and
  stops when the ids run out; AIPerf's `--isl-block-size` defaults to 512; both must be told B.
- `session_id` is written only when asked (`sessions`): AIPerf (src/aiperf/dataset/loader/mooncake_trace.py)
  groups rows sharing one into a multi-turn conversation; the other loaders ignore the key. In an
  agent trace a subagent's calls get their `parent_id` (the subagent) instead: a conversation of
  their own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from servetrace.errors import ServetraceError
from servetrace.exports.rows import read_rows, source_of, write_sidecar
from servetrace.exports.tools import MOONCAKE_CAVEATS, mooncake_consumers
from servetrace.io import atomic_path
from servetrace.schema import HASH_IDS

INT32_MAX = 2**31 - 1


def _dense_ids(known: pl.Series) -> pl.Series:
    """Each list's ids renumbered 0.. in order of first appearance over the whole column (nulls stay null).
    Compact id ranges go through a lookup table, sparse ones (64-bit block hashes) through a join."""
    flat = known.drop_nulls().explode()
    order = flat.gather(flat.arg_unique())  # distinct ids, first appearance first
    if order.len() and int(order.max()) - int(order.min()) < 4 * flat.len() + 1_000_000:
        lo = int(order.min())
        lut = np.zeros(int(order.max()) - lo + 1, dtype=np.int64)
        lut[order.to_numpy() - lo] = np.arange(order.len())
        codes = lut[flat.to_numpy() - lo]
    else:
        table = pl.DataFrame({"v": order, "c": pl.int_range(order.len(), eager=True, dtype=pl.Int64)})
        codes = flat.to_frame("v").join(table, on="v", how="left", maintain_order="left")["c"].to_numpy()
    offsets = np.r_[0, np.cumsum(known.list.len().fill_null(0).to_numpy())].astype(np.int64)
    lists = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(codes, pa.int64()),
                                          mask=pa.array(known.is_null().to_numpy()))
    return pl.Series(known.name, lists).cast(pl.List(pl.Int64))


def mooncake_rows(rows: pl.DataFrame, block_size: int) -> tuple[pl.DataFrame, int]:
    """The JSONL columns, vectorized, how many source hash_id lists were replaced (wrong count for
    B) and how many rows' partial last block got an id of its own (`own_partial_blocks`)."""
    if block_size < 1:
        raise ServetraceError(f"--block-size {block_size}: must be a positive number of tokens")
    t0 = rows["arrival_s"].min()
    frame = rows.select(
        ((pl.col("arrival_s") - t0) * 1000).round().cast(pl.Int64).alias("timestamp"),
        pl.col("input_tokens").clip(lower_bound=1).cast(pl.Int64).alias("input_length"),
        pl.col("output_tokens").clip(lower_bound=1).cast(pl.Int64).alias("output_length"),
        (pl.col(HASH_IDS) if HASH_IDS in rows.columns else pl.lit(None, dtype=pl.List(pl.Int64))).alias("_known"),
    )
    blocks = (pl.col("input_length") + block_size - 1) // block_size
    valid = (pl.col("_known").list.len() == blocks) & ~pl.col("_known").list.contains(None)
    replaced = int(frame.select((pl.col("_known").is_not_null() & ~valid.fill_null(False)).sum()).item())
    frame = frame.with_columns(pl.when(valid).then(pl.col("_known")).alias("_known"))
    frame = frame.with_columns(_dense_ids(frame["_known"]).alias("_known"))
    top_known = frame["_known"].list.max().max()
    start = 0 if top_known is None else int(top_known) + 1
    need = pl.when(pl.col("_known").is_null()).then(blocks).otherwise(0)
    frame = frame.with_columns(need.alias("_n")).with_columns((pl.col("_n").cum_sum() - pl.col("_n") + start).alias("_at"))
    fresh = pl.int_ranges(pl.col("_at"), pl.col("_at") + pl.col("_n"))
    out = frame.select("timestamp", "input_length", "output_length", pl.coalesce(pl.col("_known"), fresh).alias("hash_ids"))
    out, own_last = own_partial_blocks(out, block_size)
    top = out["hash_ids"].list.max().max()
    if top is not None and top > INT32_MAX:
        raise ServetraceError(f"{top + 1} distinct hash ids at block size {block_size}: more than guidellm's int32 ids hold")
    return out, replaced, own_last


def own_partial_blocks(out: pl.DataFrame, block_size: int) -> tuple[pl.DataFrame, int]:
    """`out` with a fresh last id for each row whose last block is partial and whose every id
    appears in other rows too, and how many rows that is. AIPerf 0.13's synthesizer
    (aiperf/dataset/synthesis/synthesizer.py) takes the leading ids seen twice or more as the
    shared prefix, len x block_size tokens, and refuses a row whose input is shorter ("input_len
    (...) < prefix_len (...)"), as the public Mooncake traces' repeated prompts are. A cache holds
    full blocks only, so a partial last block was never a prefix hit."""
    ids = out.select(pl.int_range(pl.len()).alias("row"), "hash_ids").explode("hash_ids")
    seen = ids.with_columns(shared=pl.len().over("hash_ids") > 1).group_by("row").agg(pl.col("shared").all())
    hit = out.select(pl.int_range(pl.len()).alias("row"), partial=pl.col("input_length") % block_size != 0)
    fix = hit.join(seen, on="row", how="left").sort("row").select(pl.col("partial") & pl.col("shared").fill_null(False))
    fix = fix.to_series()
    n = int(fix.sum())
    if not n:
        return out, 0
    top = out["hash_ids"].list.max().max()
    fresh = pl.Series(np.where(fix.to_numpy(), np.cumsum(fix.to_numpy()) + int(top), -1))
    new = out.select(pl.concat_list(pl.col("hash_ids").list.head(pl.col("hash_ids").list.len() - 1), fresh))
    return out.with_columns(pl.when(fix).then(new.to_series()).otherwise(pl.col("hash_ids")).alias("hash_ids")), n


def replay_options(block_size: int, turns: bool) -> dict:
    """Per tool, the block size and session options that replay this JSONL's prefix sharing
    (`turns`: the rows carry session ids)."""
    return {
        "vllm": f"--timed-trace-chunk-hash-size {block_size}; prefix caching on (--enable-prefix-caching, vLLM's default)",
        "sglang": "RadixAttention caches prefixes by default; mooncake prompts are built from hash_ids",
        "aiperf": f"--isl-block-size {block_size}" + ("; rows sharing a session_id replay as one multi-turn "
                                                        "conversation" if turns else "; export with --sessions to "
                                                        "replay sessions as multi-turn conversations"),
        "guidellm": f"hash_id_block_size={block_size}",
    }


def conversations(rows: pl.DataFrame) -> pl.Series:
    """The conversation each row replays in: its session, or for a subagent's call the subagent
    (its `parent_id`): a subagent runs beside its session's main agent with a context of its own,
    so one multi-turn conversation would serialize the two and mix their contexts."""
    if not {"call_kind", "parent_id"} <= set(rows.columns):
        return rows["session_id"]
    sub = (pl.col("call_kind") == "subagent") & pl.col("parent_id").is_not_null()
    return rows.select(pl.when(sub).then(pl.col("parent_id")).otherwise(pl.col("session_id"))).to_series()


def export_mooncake(rows_path: Path, out: str | Path, block_size: int = 512, sessions: bool = False) -> dict:
    out = Path(out)
    rows = read_rows(rows_path)
    frame, replaced, own_last = mooncake_rows(rows, block_size)
    with_sessions = sessions and "session_id" in rows.columns and rows["session_id"].null_count() < rows.height
    agents = with_sessions and {"call_kind", "parent_id"} <= set(rows.columns) and \
        (rows["call_kind"] == "subagent").any()
    if with_sessions:
        frame = frame.with_columns(conversations(rows).alias("session_id"))
    with atomic_path(out, ".jsonl") as tmp:
        frame.write_ndjson(tmp)
    has_known = HASH_IDS in rows.columns and rows[HASH_IDS].null_count() < rows.height
    sidecar = {
        "format": "mooncake timed JSONL",
        "timestamp_unit": "ms",
        "time_origin": "first request",
        "block_size": block_size,
        "hash_ids": ("from the source where their count is ceil(input_length / block_size), renumbered densely "
                     "from 0 in order of first appearance (equal ids stay equal); other rows get unique ids"
                     if has_known else "unique ids numbered from 0 (prefix sharing unknown)"),
        "source_hash_ids_replaced": replaced,
        "partial_last_blocks_made_own": own_last,
        "session_id": ("written (AIPerf replays the rows of one session as a multi-turn conversation)"
                       + ("; a subagent's calls are a conversation of their own, named by their parent_id"
                          if agents else "") if with_sessions else MOONCAKE_CAVEATS["session_id"]),
        "replay": replay_options(block_size, with_sessions),
        "source": source_of(rows_path),
        "scaling": {"time_scale": 1.0, "shift_s": float(rows["arrival_s"].min())},
        "requests": frame.height,
        "clamped_to_one": {"input_length": int((rows["input_tokens"] < 1).sum()),
                           "output_length": int((rows["output_tokens"] < 1).sum())},
        "consumers": mooncake_consumers(out.name, frame.height, block_size),
        "caveats": {"sglang": MOONCAKE_CAVEATS["sglang"]},
    }
    write_sidecar(out, sidecar)
    return {"format": "mooncake", "path": str(out), "requests": frame.height, "block_size": block_size,
            "hash_ids_replaced": replaced, "commands": sidecar["consumers"]}
