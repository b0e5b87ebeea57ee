"""A synthetic canonical request table from a bundle, block by block: per-client arrival times,
then lengths and failures, then one sorted table per block for the writer (generate/write.py).
Each step takes the requests of a block as (client row, window) arrays. A bundle with a session
model runs generate/sessions.py block by block (the sessions starting in each block, with all
their turns) and generate/merge.py merges the blocks by arrival with bounded memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from servetrace.arrays import arrow_of, strings_of
from servetrace.bundle.coverage import covered_seconds, covered_span
from servetrace.generation import agents
from servetrace.generation.arrivals import WindowParams, shrunk, window_params
from servetrace.generation.clumping import client_clumping, shrunk_start_shares
from servetrace.generation.failures import draw_failures, failure_probabilities
from servetrace.generation.lengths import LengthSampler
from servetrace.generation.modulation import ModulatedArrivals, modulation_spec, poisson_base, starts_modulated
from servetrace.generation.options import GenerateOptions, Timeline, select_clients, span_of, timeline
from servetrace.generation.plan import BLOCK_ROWS, Plan, check_segments, plan
from servetrace.generation.merge import merged
from servetrace.generation.sessions import session_blocks, session_columns
from servetrace.generation.table import canonical_table


def _tokens(x: np.ndarray | None) -> pa.Array | None:
    if x is None:
        return None
    missing = np.isnan(x)
    vals = np.rint(np.where(missing, 0, x)).astype(np.int32)
    return arrow_of(vals, mask=missing if missing.any() else None)


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


@dataclass
class Generation:
    """A planned generation: `summary` up front (expected requests, span), `blocks()` the tables."""

    bundle: dict
    options: GenerateOptions
    chosen: list[int]
    params: WindowParams
    plan: Plan
    summary: dict
    block_rows: int = BLOCK_ROWS
    scratch_beside: Path | None = None  # the output: a multi-block session merge spills beside it

    @property
    def sessions(self) -> bool:
        return bool(self.bundle.get("sessions")) and self.options.sessions

    @property
    def agents(self) -> bool:
        return bool(self.bundle.get("agents")) and self.options.sessions

    def blocks(self) -> Iterator[pa.Table]:
        """Canonical tables, one per block, each sorted by arrival and after the one before."""
        if self.agents:  # agent sessions (generation/agents.py)
            yield from merged(agents.agent_tables(self, self._stretch), self.block_rows, self.scratch_beside)
            self._finish(self.summary["requests"])
            return
        if self.sessions:
            yield from merged(self._session_tables(), self.block_rows, self.scratch_beside)
            self._finish(self.summary["requests"])
            return
        bundle, chosen, seed, tl = self.bundle, self.chosen, self.options.seed, self.plan.timeline
        reachable = np.zeros_like(self.params.rate, dtype=bool)
        reachable[:, np.unique(tl.window)] = True
        reachable &= self.params.rate > 0
        lengths = LengthSampler(bundle, chosen, reachable)
        fail_p = failure_probabilities(bundle, chosen)
        groups = group_columns(bundle, chosen)
        for arr, block in self._arrival_blocks():
            ln = canonical_lengths(lengths.sample(arr.client, arr.window, seed, block))
            failed = draw_failures(fail_p, chosen, arr.client, arr.window, seed, block)
            yield block_table(self._stretch(arr.arrival_s), arr.client, ln, failed, groups, bundle)

    def arrival_times(self) -> np.ndarray:
        """The arrival times `blocks()` gives, sorted, without drawing lengths or failures (their
        draws run on streams of their own, so the arrivals are the same); no sessions or agents."""
        if self.agents or self.sessions:
            raise ValueError("arrival_times: a bundle generated with sessions needs blocks()")
        # a block's arrivals are runs already sorted, one per client (or modulation group): a stable
        # sort merges runs (4x faster here than the default quicksort) and equal values sort alike
        parts = [np.sort(self._stretch(arr.arrival_s), kind="stable") for arr, _ in self._arrival_blocks()]
        return np.concatenate(parts) if parts else np.empty(0)

    def _arrival_blocks(self) -> Iterator[tuple]:
        """Per block of the plan holding requests: its per-client arrivals and the block number."""
        tl = self.plan.timeline
        process = ModulatedArrivals(self.bundle, self.chosen, self.params, self.options.seed, self.summary["arrival_model"])
        made = exhausted = 0
        for lo, hi, block in self.plan.bounds:
            part = Timeline(tl.begin_s[lo:hi], tl.end_s[lo:hi], tl.window[lo:hi], tl.factor[lo:hi])
            arr = process.block(part, block)
            exhausted += arr.pool_exhausted
            made += len(arr.client)
            self.summary.update(requests=made, pool_exhausted_cells=exhausted)
            if len(arr.client):
                yield arr, block
        self._finish(made)

    def _stretch(self, t: np.ndarray) -> np.ndarray:
        s = self.options.time_scale
        return t if s is None else self.summary["start_s"] + (t - self.summary["start_s"]) * s

    def _finish(self, made: int) -> None:
        span = self.summary["duration_s"]
        self.summary["mean_rps"] = made / span if span else None

    def _session_tables(self) -> Iterator[pa.Table]:
        """One table per block of the sessions starting in it (sorted by arrival; blocks overlap)."""
        bundle, chosen, options = self.bundle, self.chosen, self.options
        fail_p, groups = failure_probabilities(bundle, chosen), group_columns(bundle, chosen)
        made = sessions = exhausted = 0
        for arr, lengths, turns, block in session_blocks(bundle, options, chosen, self.params, self.plan,
                                                            self.summary["arrival_model"]):
            failed = draw_failures(fail_p, chosen, arr.client, arr.window, options.seed, block)
            order = np.argsort(arr.arrival_s, kind="stable")
            extra = session_columns(turns, order)
            table = block_table(self._stretch(arr.arrival_s), arr.client, lengths, failed, groups, bundle,
                                extra.pop("session_id", None))
            for name, column in extra.items():  # hash_ids: the optional trailing column
                table = table.append_column(name, column)
            made, exhausted = made + len(order), exhausted + arr.pool_exhausted
            sessions += int(len(np.unique(turns.session)))
            self.summary.update(requests=made, pool_exhausted_cells=exhausted, sessions=sessions)
            if table.num_rows:
                yield table


def block_table(t: np.ndarray, client: np.ndarray, lengths: dict, failed: np.ndarray | None,
                groups: dict[str, list[str | None]], bundle: dict, session_id: pa.Array | None = None) -> pa.Table:
    """The canonical table of a block's requests, sorted by arrival (`session_id` already in that order)."""
    if failed is not None and bundle["failures"]["zero_output"]:
        for name in ("output_tokens", "reason_tokens"):  # the source's way of writing a failure
            if lengths[name] is not None:
                lengths[name] = np.where(failed, 0.0, lengths[name])
    order = np.argsort(t, kind="stable")
    codes = arrow_of(client[order].astype(np.int32))
    cols = {"arrival_s": t[order]}
    for column, values in groups.items():
        cols[column] = pa.DictionaryArray.from_arrays(codes, strings_of(values)).cast(pa.string())
    for name, x in lengths.items():
        if x is not None:
            cols[name] = _tokens(x[order])
    if failed is not None:
        cols["failed"] = failed[order]
    if session_id is not None:
        cols["session_id"] = session_id
    if "input_tokens" not in cols or "output_tokens" not in cols:
        cols.setdefault("input_tokens", pa.nulls(len(order), pa.int32()))
        cols.setdefault("output_tokens", pa.nulls(len(order), pa.int32()))
    return canonical_table(cols)


def prepare(bundle: dict, options: GenerateOptions = GenerateOptions(), block_rows: int = BLOCK_ROWS) -> Generation:
    """Plan a generation without drawing anything: what it will cost is known before any work."""
    chosen = select_clients(bundle, options.clients)
    start, end = span_of(bundle, options)
    check_segments(end - start, float(bundle["window_s"]))
    every = window_params(bundle, list(range(len(bundle["clients"]))))
    # session starts run in the model fitted on them; agents, and starts of a model fitted on every request, renewal
    sessions_on = options.sessions and bool(bundle.get("agents") or bundle.get("sessions"))
    sessions = sessions_on and bool(bundle.get("agents") or not starts_modulated(bundle))
    block_rows = agents.block_rows(bundle, options, block_rows)
    model = "renewal" if sessions or modulation_spec(bundle) is None else bundle["arrival_model"]["chosen"]
    if model == "cox" and poisson_base(bundle):  # the Cox model: Poisson within the modulated time
        every = WindowParams(every.rate, np.zeros_like(every.family), np.ones_like(every.shape))
    if bundle.get("arrival_model") and not (sessions_on and bundle.get("agents")):
        # rates fitted from counts whose noise is not added twice (a session's turns clump in a window)
        if sessions_on:
            every = shrunk(every, covered_seconds(bundle), clump=client_clumping(bundle, list(range(len(bundle["clients"])))))
            bundle = {**bundle, "sessions": shrunk_start_shares(bundle["sessions"])}
        else:
            every = shrunk(every, covered_seconds(bundle))
    params = WindowParams(every.rate[chosen], every.family[chosen], every.shape[chosen])
    tl = timeline(bundle, options, params.rate)
    pl_ = plan(tl, every, params.rate, block_rows)
    tl = pl_.timeline
    span = float(tl.end_s[-1] - tl.begin_s[0]) if len(tl.begin_s) else 0.0
    span *= options.time_scale or 1.0
    summary = {"requests": 0, "expected_requests": pl_.expected_requests, "clients": len(chosen),
               "start_s": float(tl.begin_s[0]) if len(tl.begin_s) else start, "duration_s": span,
               "mean_rps": None, "source_span": covered_span(bundle), "blocks": len(pl_.bounds),
               "pool_exhausted_cells": 0, "arrival_model": model, "options": options.to_dict()}
    return Generation(bundle, options, chosen, params, pl_, summary, block_rows)


def generate_table(bundle: dict, options: GenerateOptions = GenerateOptions()) -> tuple[pa.Table, dict]:
    """(canonical table sorted by arrival, summary), all in memory. Deterministic in (bundle, options)."""
    gen = prepare(bundle, options)
    tables = list(gen.blocks())
    table = pa.concat_tables(tables) if tables else canonical_table({"arrival_s": np.empty(0)})
    return table, gen.summary
