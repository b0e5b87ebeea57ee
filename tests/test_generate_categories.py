"""Reasoning and multimodal workloads end to end: a fitted reasoning trace is generated, validated
(reasoning KS and input-reasoning Spearman) and exported as a ServeGen reason pool; bundles imported
from the shipped reason and multimodal pools generate reasoning tokens and images."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest

from conftest import SHARED_DATA
from servetrace.bundle.fit import bundle_from_requests
from servetrace.bundle.model import validate_bundle
from servetrace.bundle.servegen_import import import_servegen_pool
from servetrace.exports.servegen import export_servegen
from servetrace.generation import GenerateOptions, generate_table
from servetrace.generation.table import canonical_table
from servetrace.settings import Settings
from servetrace.validation import fidelity

SOURCE = {"path": "planted", "sha256": None, "rows": None, "format": "generic"}


def reasoning_trace(seed: int = 0, n: int = 30_000) -> pl.DataFrame:
    """Two clients; output log-normal; reasoning ratio bimodal (near 0.35 and 0.95, like
    DeepSeek-R1) and more reasoning for longer prompts (input-reasoning Spearman about 0.3)."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal([0, 0, 0], [[1, 0.2, 0.45], [0.2, 1, 0.1], [0.45, 0.1, 1]], n)
    inp = np.exp(6 + 0.9 * z[:, 0]).astype(np.int64) + 1
    out = np.exp(6.5 + 0.8 * z[:, 1]).astype(np.int64) + 1
    high = z[:, 2] > 0.3
    ratio = np.clip(np.where(high, 0.95, 0.35) + 0.05 * rng.standard_normal(n), 0, 1)
    t = np.cumsum(rng.gamma(0.5, 2 * 0.2, n))  # CV 1.4, 5 req/s
    return pl.from_arrow(canonical_table({
        "arrival_s": t, "client_id": np.where(rng.random(n) < 0.7, "a", "b").tolist(),
        "input_tokens": inp, "output_tokens": out, "reason_tokens": np.rint(out * ratio)}))


def test_a_reasoning_trace_generates_validates_and_exports_as_a_reason_pool(tmp_path):
    src = reasoning_trace()
    bundle = validate_bundle(bundle_from_requests(src, Settings(), SOURCE))
    assert bundle["category"] == "reason"
    assert bundle["clients"][0]["joint"]["fields"] == ["input_tokens", "output_tokens", "reason_ratio"]
    syn = pl.from_arrow(generate_table(bundle, GenerateOptions(seed=2))[0])
    assert (syn["reason_tokens"] <= syn["output_tokens"]).all()
    result, _ = fidelity(src, syn)
    assert result["checks"]["ks_reason"]["pass"], result["ks_reason"]
    pair = result["spearman"]["input_reason"]
    assert pair["source"] == pytest.approx(0.3, abs=0.1)
    assert result["checks"]["spearman_input_reason"]["pass"], pair
    summary = export_servegen(bundle, tmp_path / "sg")
    assert summary["category"] == "reason"
    for path in (tmp_path / "sg" / "data" / "reason" / "servetrace").glob("chunk-*-dataset.json"):
        for window in json.loads(path.read_text()).values():
            assert set(window) == {"input_tokens", "output_tokens", "reason_ratio"}
            assert len(re.findall(r":", window["reason_ratio"])) == 501


def pool(category: str, model: str) -> dict:
    path = SHARED_DATA / "servegen" / category / model
    if not path.exists():
        pytest.skip(f"ServeGen pool {category}/{model} is absent (../shared is not beside the repo)")
    return import_servegen_pool(path)


def expected_mean(bundle: dict, syn: pl.DataFrame, field: str) -> float:
    """Mean of `field` over the clients' first dataset window, weighted by generated requests."""
    counts = dict(syn.group_by("client_id").len().iter_rows())
    num = den = 0.0
    for c in bundle["clients"]:
        if c["id"] in counts and c["lengths"]["window_start_s"]:
            p = c["lengths"]["fields"][field][0]
            num += counts[c["id"]] * float(np.dot(p["values"], p["probs"]))
            den += counts[c["id"]]
    return num / den


def test_an_imported_reason_pool_generates_reasoning_tokens_from_the_ratio():
    bundle = pool("reason", "deepseek-r1")
    syn = pl.from_arrow(generate_table(bundle, GenerateOptions(duration_s=3600, seed=1))[0])
    assert syn.height > 10_000 and syn["reason_tokens"].null_count() == 0
    assert (syn["reason_tokens"] <= syn["output_tokens"]).all()
    ratio = (syn["reason_tokens"] / syn["output_tokens"]).mean()
    assert ratio == pytest.approx(expected_mean(bundle, syn, "reason_ratio"), abs=0.01)


def test_an_imported_multimodal_pool_generates_images_and_their_tokens():
    bundle = pool("multimodal", "mm-image")
    syn = pl.from_arrow(generate_table(bundle, GenerateOptions(duration_s=3600, seed=1))[0])
    assert syn.height > 5_000 and syn["image_count"].null_count() == 0
    assert syn["image_count"].mean() == pytest.approx(expected_mean(bundle, syn, "image_count"), rel=0.03)
    per_image = syn.filter(pl.col("image_count") > 0).select(pl.col("image_tokens") / pl.col("image_count"))
    assert per_image.to_series().mean() == pytest.approx(expected_mean(bundle, syn, "image_tokens"), rel=0.05)
    text = (syn["input_tokens"] - syn["image_tokens"]).cast(pl.Float64)
    assert (text >= 0).all() and text.mean() == pytest.approx(expected_mean(bundle, syn, "text_tokens"), rel=0.05)
