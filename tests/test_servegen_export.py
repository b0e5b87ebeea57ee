"""ServeGen export: the format rules file by file, and a shipped pool imported then exported is
equivalent to the original as ServeGen loads it (same windows, rates, CVs, families, PMFs)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import SHARED_DATA
from servetrace.bundle.model import load_bundle, save_bundle
from servetrace.stats.pmf import binned_pmf
from servetrace.bundle.servegen_import import import_servegen_pool
from servetrace.exports.servegen import export_servegen
from test_servegen_reader import assert_generatable, load_pool

POOLS = {"reason": "deepseek-r1", "multimodal": "mm-image", "language": "m-small"}


def shipped(category: str) -> tuple:
    model = POOLS[category]
    if not (SHARED_DATA / "servegen" / category / model).exists():
        pytest.skip(f"ServeGen pool {category}/{model} is absent (../shared is not beside the repo)")
    return category, model


@pytest.fixture(scope="module")
def round_trips(tmp_path_factory):
    cache = {}

    def get(category: str):
        if category not in cache:
            category, model = shipped(category)
            root = tmp_path_factory.mktemp(f"sg-{category}")
            bundle = import_servegen_pool(SHARED_DATA / "servegen" / category / model)
            save_bundle(root / "bundle.json", bundle)
            export_servegen(load_bundle(root / "bundle.json"), root / "export")
            cache[category] = (bundle, root, model)
        return cache[category]

    return get


def check_rules(pool_dir, category):
    """servegen-format.md, rule by rule, on the files themselves."""
    fields = {"language": {"input_tokens", "output_tokens"},
              "reason": {"input_tokens", "output_tokens", "reason_ratio"},
              "multimodal": {"text_tokens", "image_tokens", "audio_tokens", "video_tokens",
                             "image_count", "audio_count", "video_count", "output_tokens"}}[category]
    names = [p.name for p in pool_dir.iterdir() if p.name.startswith("chunk-")]
    assert names
    for n in names:
        assert re.fullmatch(r"chunk-\d+-(trace\.csv|dataset\.json)", n), n
    starts = None
    for trace in sorted(pool_dir.glob("chunk-*-trace.csv")):
        text = trace.read_text()
        assert "\n\n" not in text and text.endswith("\n")
        rows = [line.split(",") for line in text.splitlines()]
        assert all(len(r) == 6 for r in rows), trace
        ts = [int(r[0]) for r in rows]
        assert ts == sorted(ts) and len(set(ts)) == len(ts)
        starts = ts if starts is None else starts
        assert ts == starts, f"{trace.name}: window starts differ"
        for r in rows:
            rate, cv = float(r[1]), float(r[2])
            assert rate >= 0 and cv >= 0
            if r[3] == "":
                assert r[1:] == ["0", "0", "", "0", "0"], r
            else:
                assert r[3] in ("Gamma", "Weibull") and float(r[4]) > 0 and float(r[5]) > 0
        dataset = json.loads(trace.with_name(trace.name.replace("trace.csv", "dataset.json")).read_text())
        keys = [int(k) for k in dataset]
        assert keys == sorted(keys) and set(keys) <= set(starts)
        for window in dataset.values():
            assert set(window) == fields
            for name, literal in window.items():
                assert isinstance(literal, str) and literal.startswith("{")
                pairs = re.findall(r"([-0-9.e]+): ([-0-9.e]+)", literal)
                probs = np.array([float(p) for _, p in pairs])
                assert (probs >= 0).all() and abs(probs.sum() - 1) <= 1e-6
                if name == "reason_ratio":
                    assert len(pairs) == 501
                    assert [float(k) for k, _ in pairs] == [i / 501 for i in range(501)]
                else:
                    assert all(re.fullmatch(r"\d+", k) for k, _ in pairs)
    return starts


@pytest.mark.parametrize("category", ["reason", "multimodal", "language"])
def test_export_follows_every_rule(round_trips, category):
    bundle, root, model = round_trips(category)
    pool = root / "export" / "data" / category / model
    starts = check_rules(pool, category)
    assert starts[0] == 0 and len(starts) == (144 if category != "language" else 2016)
    clients = load_pool(root / "export", category, model)
    assert_generatable(clients)
    sidecar = json.loads((pool / "servetrace-export.json").read_text())
    assert set(sidecar["clients"]) == {str(k) for k in clients}


@pytest.mark.parametrize("category", ["reason", "multimodal", "language"])
def test_round_trip_is_equivalent(round_trips, category):
    bundle, root, model = round_trips(category)
    original = load_pool(SHARED_DATA / "servegen", category, model, data="")
    exported = load_pool(root / "export", category, model)
    assert set(exported) == set(original)
    for cid, orig in original.items():
        got = exported[cid]
        assert list(got["trace"]) == list(orig["trace"])
        for ts, o in orig["trace"].items():
            g = got["trace"][ts]
            if o is None:
                assert g is None
                continue
            assert g["pat"][0] == o["pat"][0]
            np.testing.assert_allclose([g["rate"], g["cv"], *g["pat"][1]], [o["rate"], o["cv"], *o["pat"][1]], rtol=1e-9)
        assert list(got["dataset"]) == list(orig["dataset"])
        for ts, fields in orig["dataset"].items():
            for name, pdf in fields.items():
                g = np.asarray(got["dataset"][ts][name])
                if name == "reason_ratio":
                    np.testing.assert_allclose(g, pdf, atol=5e-6)
                    continue
                support = np.flatnonzero(np.asarray(pdf) > 0)
                values, probs = binned_pmf(support, np.asarray(pdf)[support], bundle["pmf_binning"])
                dense = np.zeros(max(int(values.max()) + 1, g.size))
                dense[values.astype(int)] = probs
                np.testing.assert_allclose(g, dense[: g.size], atol=5e-6)
                assert g.size == int(values.max()) + 1


def test_reimport_of_export_is_identical(round_trips):
    bundle, root, model = round_trips("reason")
    again = {c["id"]: c for c in import_servegen_pool(root / "export" / "data" / "reason" / model)["clients"]}
    first = load_bundle(root / "bundle.json")
    assert set(again) == {c["id"] for c in first["clients"]}
    for b in first["clients"]:
        a = again[b["id"]]
        assert a["share"] == pytest.approx(b["share"], rel=1e-9)
        assert a["windows"]["start_s"] == b["windows"]["start_s"]
        assert a["windows"]["family"] == b["windows"]["family"]
        for key in ("rate_rps", "cv", "shape", "scale"):
            np.testing.assert_allclose(a["windows"][key], b["windows"][key], rtol=1e-9)
        assert a["lengths"]["window_start_s"] == b["lengths"]["window_start_s"]
        for name in a["lengths"]["fields"]:
            for pa, pb in zip(a["lengths"]["fields"][name], b["lengths"]["fields"][name], strict=True):
                assert pa["values"] == pb["values"]
                np.testing.assert_allclose(pa["probs"], pb["probs"], atol=5e-6)
