"""Length fields per category, their PMFs per client and dataset window (from value counts), and
the Gaussian copula matrix of their joint structure."""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.bundle.model import CATEGORY_FIELDS
from servetrace.stats.pmf import grouped_pmfs, reason_ratio_bins


# the request columns the length fields, their category and failures are computed from
LENGTH_INPUTS = ("input_tokens", "output_tokens", "reason_tokens", "image_count", "image_tokens", "failed")


def length_fields(requests: pl.DataFrame | pl.LazyFrame, category: str,
                  keys: tuple[str, ...] = ("client", "dataset_start_s")) -> pl.DataFrame | pl.LazyFrame:
    """The category's length fields as columns after `keys` (failed requests left out: their
    lengths are not the workload's), a LazyFrame for a LazyFrame. Multimodal: text = input - image
    tokens, image_tokens per image, no audio/video."""
    lazy = requests.lazy()
    inp, out = pl.col("input_tokens"), pl.col("output_tokens")
    cols = [inp.alias("input_tokens"), out.alias("output_tokens")]
    if category == "reason":
        ratio = pl.when(out > 0).then(pl.col("reason_tokens").cast(pl.Float64) / out)
        cols.append(reason_ratio_bins(ratio).alias("reason_ratio"))
    elif category == "multimodal":
        images = pl.col("image_count").fill_null(0)
        img_tok = pl.col("image_tokens").fill_null(0) if "image_tokens" in lazy.collect_schema().names() else pl.lit(0)
        cols = [
            (inp - img_tok).clip(lower_bound=0).alias("text_tokens"),
            pl.when(images > 0).then((img_tok / images.clip(lower_bound=1)).round().cast(pl.Int64)).alias("image_tokens"),
            pl.lit(0).alias("audio_tokens"), pl.lit(0).alias("video_tokens"),
            images.alias("image_count"), pl.lit(0).alias("audio_count"), pl.lit(0).alias("video_count"),
            out.alias("output_tokens"),
        ]
    ok = ~pl.col("failed").fill_null(False)  # projected before filtering: only the needed columns are copied
    fields = lazy.select(*keys, *cols, ok.alias("_ok")).filter("_ok").drop("_ok")
    return fields if isinstance(requests, pl.LazyFrame) else fields.collect()


def with_image_default(counts: pl.DataFrame, name: str) -> pl.DataFrame:
    """Value counts (client, dataset_start_s, field, n) as the PMFs take them: tokens per image
    have no value on requests without images; when no request has images, they count as 0."""
    if name == "image_tokens" and counts[name].null_count() == counts.height:
        return counts.with_columns(pl.col(name).fill_null(0))
    return counts


def window_pmfs(counts: dict[str, pl.DataFrame], binning: dict) -> dict[str, pl.DataFrame]:
    """field -> frame (client, dataset_start_s, values, probs), one PMF per client and dataset window."""
    return {name: grouped_pmfs(frame, ["client", "dataset_start_s"], name, None if name == "reason_ratio" else binning, "n")
            for name, frame in counts.items()}


def pooled_pmfs(counts: dict[str, pl.DataFrame], binning: dict) -> dict[str, pl.DataFrame]:
    """field -> frame (client, values, probs): the client's PMF over its whole span."""
    return {name: grouped_pmfs(frame, ["client"], name, None if name == "reason_ratio" else binning, "n")
            for name, frame in counts.items()}


def joint_fields(category: str) -> tuple[str, ...]:
    return {"language": ("input_tokens", "output_tokens"),
            "reason": ("input_tokens", "output_tokens", "reason_ratio"),
            "multimodal": ("text_tokens", "image_count", "output_tokens")}[category]


def spearman_to_normal(rho_s):
    """The Gaussian copula's correlation whose Spearman is `rho_s`: 2 sin(pi rho_s / 6)
    (Spearman of a bivariate normal with correlation r is (6 / pi) arcsin(r / 2))."""
    return 2 * np.sin(np.pi * np.asarray(rho_s, dtype=float) / 6)


def corr_matrix(row: dict, names: tuple[str, ...]) -> list[list[float]]:
    """The copula matrix from a joint_structure row; undefined pairs (a constant field) -> 0."""
    k = len(names)
    m = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            v = row.get(f"corr:{names[i]}:{names[j]}")
            v = 0.0 if v is None or not np.isfinite(v) else float(np.clip(v, -1, 1))
            m[i, j] = m[j, i] = v
    vals, vecs = np.linalg.eigh(m)
    if vals.min() < 0:  # pairwise conversions need not make a valid matrix: nearest PSD, unit diagonal
        m = (vecs * np.clip(vals, 0, None)) @ vecs.T
        d = np.sqrt(np.diag(m))
        m = np.clip(m / np.outer(d, d), -1, 1)
        np.fill_diagonal(m, 1.0)
    return m.tolist()
