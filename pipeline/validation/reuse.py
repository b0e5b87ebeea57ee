"""Fidelity of block reuse and sessions: the infinite-cache hit rate, the LRU curve over the
source's capacity ladder, reuse distances, turns per session, gaps between turns (arrival to
arrival: a synthetic trace has no service times), think times (from the previous turn's end,
where both traces carry latency_s: a replay measured on a server against its source; null
otherwise) and follow-up input (context) lengths. Each
comes with its noise floors: the same number between two workloads generated from the bundle
(seed to seed) and between two halves of the source's sessions (half to half)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import polars as pl
import pyarrow.compute as pc
from scipy import stats

from servetrace import io
from servetrace.bundle.sessions import session_frame
from servetrace.io import write_parquet
from servetrace.validation.noise import pair_max
from servetrace.reuse.analysis import Reuse, analyze
from servetrace.schema import HASH_IDS
from servetrace.settings import DEFAULTS, Settings
from servetrace.stages.prefix import session_codes


def _profile(path: Path, block_size: int | None, settings: Settings = DEFAULTS) -> tuple[Reuse | None, pl.DataFrame | None]:
    names = io.parquet_columns(path)
    codes = session_codes(path) if "session_id" in names else None
    reuse = analyze(path, block_size=block_size, sessions=codes, t=settings.stages.reuse) if HASH_IDS in names else None
    return reuse, session_frame(path, codes, reuse, settings.fit.sessions.session_rows)


def _ks(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    return float(stats.ks_2samp(a, b).statistic) if len(a) and len(b) else None


def _curve_diff(a: Reuse, b: Reuse) -> float | None:
    ca = a.curve.filter((pl.col("block_size") == a.block_size) & pl.col("capacity_blocks").is_not_null())
    cb = b.curve.filter((pl.col("block_size") == a.block_size) & pl.col("capacity_blocks").is_not_null())
    if not ca.height or not cb.height:
        return None
    caps = ca["capacity_blocks"].to_numpy()
    # b's curve at a's capacities: past b's own ladder, b holds every block (its infinite value)
    inf_b = b.values["infinite_hit_rate"]
    at = np.interp(np.log2(caps), np.log2(cb["capacity_blocks"].to_numpy()), cb["hit_rate"].to_numpy(), right=inf_b)
    return float(np.abs(at - ca["hit_rate"].to_numpy()).max())


def compare(a: tuple, b: tuple) -> dict:
    """The reuse and session numbers of trace b against trace a (each (Reuse, session frame))."""
    (ra, fa), (rb, fb) = a, b
    out: dict = {}
    if ra is not None and rb is not None:
        out["infinite_hit_rate"] = {"source": ra.values["infinite_hit_rate"], "synthetic": rb.values["infinite_hit_rate"],
                                    "diff": abs(ra.values["infinite_hit_rate"] - rb.values["infinite_hit_rate"])}
        out["lru_curve_max_diff"] = _curve_diff(ra, rb)
        out["ks_reuse_distance"] = _ks(ra.distance_sample.astype(float), rb.distance_sample.astype(float))
    if fa is not None and fb is not None and fa.height and fb.height:
        turns = lambda f: f.group_by("session").len()["len"].to_numpy().astype(float)
        follow = lambda f, c: f.filter(pl.col("turn") > 1)[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
        out["ks_turns"] = _ks(turns(fa), turns(fb))
        out["ks_turn_gap"] = _ks(follow(fa, "gap_s"), follow(fb, "gap_s"))
        out["ks_think_time"] = _ks(follow(fa, "think_s"), follow(fb, "think_s"))
        out["ks_context"] = _ks(follow(fa, "input_tokens"), follow(fb, "input_tokens"))
    return out


def _halves(path: Path, session: np.ndarray | None, work: Path) -> tuple[Path, Path]:
    """The source's sessions (each request its own without sessions) split in two by a hash of
    the session: both halves span the whole trace, so they differ by sampling alone."""
    table = io.read_parquet(path)
    key = session if session is not None else np.arange(table.num_rows)
    odd = (((key.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & np.uint64(1)).astype(bool)
    a, b = work / "half_a.parquet", work / "half_b.parquet"
    write_parquet(a, table.filter(pa.array(~odd)), {})
    write_parquet(b, table.filter(pa.array(odd)), {})
    return a, b


def _value(v) -> float | None:
    return v["diff"] if isinstance(v, dict) else v


def reuse_fidelity(source: Path, synthetic: Path, settings: Settings = DEFAULTS, seeds: tuple | None = None,
                   work: Path | None = None) -> dict:
    """{metric: value or pair} plus `noise_floor` {metric: {seed_to_seed, half_to_half}}: the
    largest of the same number over the pairs of workloads generated from the bundle (`seeds`:
    their tables; null without) and between two halves of the source's sessions. `work`: where the
    halves and seed tables are written (validate's output directory; default beside the source)."""
    src = _profile(source, None, settings)
    block = src[0].block_size if src[0] is not None else None
    out = compare(src, _profile(synthetic, block, settings))
    if not out:
        return {}
    with io.temporary_dir(work or Path(source).parent, ".validate-halves.") as tmp:
        frame = src[1]
        session = None
        if frame is not None:
            session = frame.sort("row")["session"].to_numpy() if frame.height == io.parquet_rows(source) else None
        h1, h2 = _halves(Path(source), session, Path(tmp))
        half = compare(_profile(h1, block, settings), _profile(h2, block, settings))
        seed = {}
        if seeds is not None:
            paths = [Path(tmp) / f"seed_{i}.parquet" for i in range(len(seeds))]
            for p, table in zip(paths, seeds):
                write_parquet(p, table, {})
            seed = pair_max(compare, [_profile(p, block, settings) for p in paths])
    out["noise_floor"] = {k: {"seed_to_seed": _value(seed.get(k)), "half_to_half": _value(half.get(k))} for k in out}
    out["noise_floor_basis"] = {"seed_to_seed": "workloads generated from the bundle with the floor seeds, "
                                                "the largest over their pairs",
                                "half_to_half": "the source's sessions split in two halves by a hash (each half against the other)"}
    out["block_size"] = block
    return out
