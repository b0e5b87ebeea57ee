"""A synthetic canonical request table from a bundle: per-client arrivals, then lengths."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from servetrace.generate.arrivals import arrivals, window_params
from servetrace.generate.failures import draw_failures
from servetrace.generate.lengths import sample_lengths
from servetrace.generate.options import GenerateOptions, select_clients, timeline
from servetrace.generate.sessions import session_columns, session_layer
from servetrace.generate.table import canonical_table


def _tokens(x: np.ndarray | None) -> pa.Array | None:
    if x is None:
        return None
    missing = np.isnan(x)
    vals = np.rint(np.where(missing, 0, x)).astype(np.int32)
    return pa.array(vals, mask=missing if missing.any() else None)


def canonical_lengths(f: dict[str, np.ndarray]) -> dict[str, np.ndarray | None]:
    """Bundle length fields -> canonical columns: reasoning from `reason_ratio` x output;
    multimodal input = text + images x tokens per image, image tokens counted in total."""
    out = f.get("output_tokens")
    inp = f.get("input_tokens", f.get("text_tokens"))
    reason = f.get("reason_tokens")
    if reason is None and "reason_ratio" in f and out is not None:
        reason = np.rint(f["reason_ratio"] * out)
    images = f.get("image_count")
    image_tokens = None
    if images is not None and "image_tokens" in f:
        image_tokens = np.nan_to_num(images) * np.nan_to_num(f["image_tokens"])
        if "input_tokens" not in f and inp is not None:
            inp = inp + image_tokens
    return {"input_tokens": inp, "output_tokens": out, "reason_tokens": reason,
            "image_count": images, "image_tokens": image_tokens}


GROUP_COLUMNS = ("client_id", "session_id", "model", "service")


def group_columns(bundle: dict, chosen: list[int]) -> dict[str, list[str | None]]:
    """Where each client's id goes: `client_id`, or, for a bundle grouped by other columns
    (`group_by` "model,service", ids "GPT-4|api"), back into those columns, so the synthetic
    trace has the source's shape. A grouping of everything ("all") writes none."""
    ids = [bundle["clients"][ci]["id"] for ci in chosen]
    keys = [k.strip() for k in bundle["group_by"].split(",")]
    if keys == ["client_id"]:
        return {"client_id": ids}
    if all(k in GROUP_COLUMNS for k in keys):
        parts = [i.split("|") for i in ids]
        if all(len(p) == len(keys) for p in parts):
            return {k: [p[j] or None for p in parts] for j, k in enumerate(keys)}
    if keys == ["all"]:
        return {}
    return {"client_id": ids}


def generate_table(bundle: dict, options: GenerateOptions = GenerateOptions()) -> tuple[pa.Table, dict]:
    """(canonical table sorted by arrival, summary). Deterministic in (bundle, options)."""
    chosen = select_clients(bundle, options.clients)
    params = window_params(bundle, chosen)
    tl = timeline(bundle, options, params.rate)
    turns = None
    if bundle.get("sessions") and options.sessions:
        arr, lengths, turns = session_layer(bundle, options, chosen, params, tl)
    else:
        arr = arrivals(params, tl, chosen, options.seed)
        lengths = canonical_lengths(sample_lengths(bundle, chosen, arr.client, arr.window, options.seed))
    failed = draw_failures(bundle, chosen, arr.client, arr.window, options.seed)
    if failed is not None and bundle["failures"]["zero_output"]:
        for name in ("output_tokens", "reason_tokens"):  # the source's way of writing a failure
            if lengths[name] is not None:
                lengths[name] = np.where(failed, 0.0, lengths[name])
    order = np.argsort(arr.arrival_s, kind="stable")
    codes = pa.array(arr.client[order].astype(np.int32))
    cols = {"arrival_s": arr.arrival_s[order]}
    for column, values in group_columns(bundle, chosen).items():
        cols[column] = pa.DictionaryArray.from_arrays(codes, pa.array(values, type=pa.string())).cast(pa.string())
    for name, x in lengths.items():
        if x is not None:
            cols[name] = _tokens(x[order])
    if failed is not None:
        cols["failed"] = failed[order]
    extra = session_columns(turns, order) if turns is not None else {}
    if "session_id" in extra:
        cols["session_id"] = extra.pop("session_id")
    if "input_tokens" not in cols or "output_tokens" not in cols:
        cols.setdefault("input_tokens", pa.nulls(len(order), pa.int32()))
        cols.setdefault("output_tokens", pa.nulls(len(order), pa.int32()))
    span = float(tl.end_s[-1] - tl.begin_s[0]) if len(tl.begin_s) else 0.0
    summary = {"requests": int(len(order)), "clients": len(chosen), "start_s": float(tl.begin_s[0]),
               "duration_s": span, "mean_rps": len(order) / span if span else None,
               "pool_exhausted_cells": arr.pool_exhausted, "options": options.to_dict()}
    table = canonical_table(cols)
    for name, column in extra.items():  # hash_ids: the optional trailing column
        table = table.append_column(name, column)
    if turns is not None:
        summary["sessions"] = int(len(np.unique(turns.session)))
    return table, summary
