"""Noise floors of the checks: how far the same metric moves by sampling alone, so a reader
can tell a real miss from noise.

- seed to seed: the largest value of the metric between two of the workloads the generator makes
  from the bundle with the floor seeds (FidelitySettings.floor_seeds, three: three pairs), over
  the source's span: what a fresh seed alone changes;
- half to half: the metric between the two time halves of the source (its whole rate windows cut
  in two equal runs, an odd last window left out, the second laid over the first); for the rate,
  each whole window's rate from its first half against its second half (a half window's count is noisier than a whole one's by about
  sqrt 2, so this floor is the looser of the two); for the length checks (KS of each length, the
  input / output Spearman), the source's rows split in two by a hash of the row.

A check is `within_noise` when its value is at most the larger floor: a miss by no more than the
source differs from itself, or the generator from itself, is not evidence of a wrong model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from servetrace.errors import ServetraceError
from servetrace.outputs import BUNDLE
from servetrace.settings import FidelitySettings
from servetrace.stats import fidelity as m

KINDS = ("seed_to_seed", "half_to_half")


def find_bundle(bundle: str | Path | None, source: str | Path) -> Path | None:
    """The bundle to draw the seed-to-seed floor from: `bundle` (a bundle.json or a directory
    holding one), else the source's own when the source is an output directory with one."""
    if bundle is not None:
        path = Path(bundle) / BUNDLE if Path(bundle).is_dir() else Path(bundle)
        if not path.is_file():
            raise ServetraceError(f"{bundle}: no bundle.json there (--bundle takes a bundle or its directory)")
        return path
    own = Path(source) / BUNDLE
    return own if Path(source).is_dir() and own.is_file() else None


def seed_tables(bundle_path: Path | None, seeds: tuple[int, ...] = FidelitySettings.floor_seeds) -> tuple | None:
    """Workloads generated from the bundle (one per seed of `seeds`, source span), as Arrow
    tables: their arrival times give the arrival checks' floor, their lengths the length checks',
    their blocks and sessions the reuse checks', their calls the agent checks'."""
    if bundle_path is None:
        return None
    from servetrace.bundle import load_bundle
    from servetrace.generation import GenerateOptions, generate_table

    bundle = load_bundle(bundle_path)
    return tuple(generate_table(bundle, GenerateOptions(seed=s))[0] for s in seeds)


def pair_max(compare, items) -> dict:
    """Per metric, the largest value `compare(a, b)` gives over every pair of `items` (a pair's
    value a {"diff": ...} counts by its diff; null where no pair has one): the seed-to-seed floor.
    One pair is itself noisy (Mooncake reuse-distance KS: 0.024 to 0.066 over 15 pairs of seeds);
    the largest of three pairs stands for a high quantile of that spread."""
    from itertools import combinations

    out: dict = {}
    for a, b in combinations(items, 2):
        for k, v in compare(a, b).items():
            v = v["diff"] if isinstance(v, dict) and "diff" in v else v
            if isinstance(v, (int, float)) and v is not None:
                out[k] = max(out.get(k, v), v)
            else:
                out.setdefault(k, None)
    return out


def half_windows_ape(t: np.ndarray, span: tuple[float, float], window_s: float) -> float | None:
    """Mean |second - first| / first over the whole windows of `span`, first and second being the
    counts in the window's two halves (windows whose first half is empty are left out)."""
    lo, hi = span
    n = int(np.floor((hi - lo) / window_s + 1e-9))
    if n < 1:
        return None
    idx = np.floor((t - lo) / (window_s / 2)).astype(np.int64)
    halves = np.bincount(idx[(idx >= 0) & (idx < 2 * n)], minlength=2 * n).reshape(n, 2).astype(float)
    ape = m.rate_ape(halves[:, 0], halves[:, 1])
    ape = ape[~np.isnan(ape)]
    return float(ape.mean()) if len(ape) else None


def noise_floors(src_t: np.ndarray, seeds: tuple[np.ndarray, ...] | None, window_s: float,
                 scales_s, min_cover: float) -> dict[str, dict]:
    """{check: {seed_to_seed, half_to_half}} for rate_mape, iat_cv and idc_<scale> (`seeds`: the
    seed workloads' arrival times; the largest over their pairs)."""
    from servetrace.validation.fidelity import arrival_errors, arrivals, common_span

    half: dict = {}
    span = common_span(src_t, src_t, window_s)
    if span is not None:
        lo, hi = span
        n = int(np.floor((hi - lo) / window_s + 1e-9))
        length = (n // 2) * window_s if n >= 2 else (hi - lo) / 2  # an odd last window is left out
        first = src_t[(src_t >= lo) & (src_t < lo + length)]
        second = src_t[(src_t >= lo + length) & (src_t < lo + 2 * length)] - length
        same = (lo, lo + length)
        half = {"iat_cv": m.relative_error(m.iat_cv(first), m.iat_cv(second)),
                **{f"idc_{s}": m.relative_error(m.idc(first, s, same), m.idc(second, s, same)) for s in scales_s},
                "rate_mape": half_windows_ape(src_t, span, window_s)}
    seed = pair_max(lambda a, b: arrival_errors(arrivals(a, b, window_s, scales_s, min_cover)[0]), seeds) if seeds else {}
    names = ["rate_mape", "iat_cv", *(f"idc_{s}" for s in scales_s)]
    return {k: {"seed_to_seed": seed.get(k), "half_to_half": half.get(k)} for k in names}


def with_floor(check: dict, floor: dict) -> dict:
    """A check with its noise floors and whether its value lies within the larger of them."""
    known = [v for v in floor.values() if v is not None]
    within = None if check["value"] is None or not known else bool(check["value"] <= max(known))
    return {**check, "noise_floor": floor, "within_noise": within}

