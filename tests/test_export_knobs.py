"""The knob card's numbers against the bundle they come from, and the ServeGen export's refusals."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import polars as pl
import pytest

from servetrace.errors import ServetraceError
from servetrace.exports.knobs import export_knobs, knob_card, knob_markdown, length_mixture, rate_stages
from servetrace.exports.servegen import export_servegen, pmf_literal
from test_bundle_fit import planted_fit
from test_servegen_reader import literal_dict, load_pool


@pytest.fixture(scope="module")
def fitted():
    return planted_fit(11, ("a", 3.0, 1.5, 20_000, 0.5), ("b/../c d", 1.0, 1.0, 5_000, 0.0))


GUIDELLM_KEYS = {f"{k}{suffix}" for k in ("prompt_tokens", "output_tokens") for suffix in ("", "_stdev", "_min", "_max")}


def test_knob_numbers_match_the_bundle(fitted, tmp_path):
    frame, bundle = fitted
    card = knob_card(bundle)
    rate = np.asarray(bundle["aggregate"]["rate_rps"])
    cv = np.asarray([np.nan if v is None else v for v in bundle["aggregate"]["cv"]], dtype=float)
    ok = np.isfinite(cv)
    expected_cv = np.average(cv[ok], weights=rate[ok])
    tools = card["tools"]
    vllm = tools["vllm"]["flags"]
    # counts and rate over the source's covered span: the partial first and last windows count
    # their covered seconds only, so the card asks for exactly the source's requests
    t = frame["arrival_s"].to_numpy()
    assert vllm["--num-prompts"] == frame.height == card["requests"]
    assert vllm["--request-rate"] == pytest.approx(frame.height / (t.max() - t.min()), rel=1e-4)
    assert card["covered"] == {"start_s": t.min(), "end_s": t.max(), "seconds": pytest.approx(t.max() - t.min())}
    assert vllm["--burstiness"] == pytest.approx(1 / expected_cv**2, rel=1e-3)
    assert tools["aiperf"]["flags"]["--arrival-smoothness"] == vllm["--burstiness"]  # alias --vllm-burstiness
    vidur = tools["vidur"]["flags"]
    assert vidur["--gamma_request_interval_generator_config_cv"] == pytest.approx(expected_cv, rel=1e-3)
    assert vidur["--gamma_request_interval_generator_config_qps"] == vllm["--request-rate"]
    ok_rows = frame.filter(~pl.col("failed"))
    assert card["lengths"]["input_tokens"]["mean"] == pytest.approx(ok_rows["input_tokens"].mean(), rel=0.003)
    assert vllm["--random-input-len"] == round(card["lengths"]["input_tokens"]["mean"])
    stages = tools["inference-perf"]["config"]["load"]["stages"]
    assert sum(s["duration"] for s in stages) + card["inference_perf_idle_s_dropped"] == pytest.approx(t.max() - t.min(), abs=len(rate))
    assert sum(s["rate"] * s["duration"] for s in stages) == pytest.approx(frame.height, rel=0.01)  # rates rounded to 2 digits
    assert "2 = twice as fast" in tools["aiperf"]["speed_knob"]["direction"]
    assert "--fixed-schedule-speedup" not in tools["aiperf"]["flags"] and "--synthesis-speedup-ratio" in tools["aiperf"]["speed_knob"]["flag"]
    for tool in ("sglang", "guidellm", "vidur"):
        assert "2 = twice as slow" in tools[tool]["speed_knob"]["direction"]
    assert "larger is slower" in tools["vllm"]["speed_knob"]["direction"]
    assert all(any("per-client" in c for c in t["cannot_express"]) for t in tools.values())
    assert all(t["checked_against"] and all(r["repo"] and r["path"] for r in t["checked_against"]) for t in tools.values())
    export_knobs(bundle, tmp_path / "knobs")
    assert json.loads((tmp_path / "knobs" / "knobs.json").read_text())["tools"]["vllm"]["flags"] == vllm
    md = (tmp_path / "knobs" / "knobs.md").read_text()
    assert "| vllm 0.34.0 |" in md and f"--burstiness {vllm['--burstiness']}" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(tools)
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 6 for line in rows)  # 5 cells: a '|' in a cell is escaped


def test_lengths_and_arrivals_as_each_tool_samples_them(fitted):
    """Each tool's own sampler (reimplemented from its source) run on the card's flags gives the fitted
    means, spreads and inter-arrival CV."""
    _, bundle = fitted
    card = knob_card(bundle)
    tools, lens = card["tools"], card["lengths"]
    i, o = lens["input_tokens"], lens["output_tokens"]
    rng = np.random.default_rng(5)
    # vLLM RandomDataset.get_sampling_params: integers on [floor(L(1-r)), ceil(L(1+r))]
    v = tools["vllm"]["flags"]
    r = v["--random-range-ratio"]
    x = rng.integers(math.floor(v["--random-input-len"] * (1 - r)), math.ceil(v["--random-input-len"] * (1 + r)) + 1, 200_000)
    assert x.mean() == pytest.approx(i["mean"], rel=0.01)
    assert x.std() / x.mean() == pytest.approx(min(i["cv"], 0.99 / math.sqrt(3)), rel=0.02)
    # vLLM get_request: gamma(shape=burstiness, scale=1/(rate*burstiness))
    k, rate = v["--burstiness"], v["--request-rate"]
    gaps = rng.gamma(shape=k, scale=1 / (rate * k), size=200_000)
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.01)
    assert gaps.std() / gaps.mean() == pytest.approx(card["arrivals"]["iat_cv"], rel=0.02)
    # SGLang compute_random_lens: integers on [max(int(L r), 1), L]
    sg = tools["sglang"]["flags"]
    for flag, target in (("--random-input-len", i), ("--random-output-len", o)):
        L, r = sg[flag], sg["--random-range-ratio"]
        x = rng.integers(max(int(L * r), 1), L + 1, 200_000)
        assert x.mean() == pytest.approx(target["mean"], rel=0.01)
    L = sg["--random-input-len"]
    x = rng.integers(max(int(L * sg["--random-range-ratio"]), 1), L + 1, 200_000)
    assert x.std() / x.mean() == pytest.approx(min(i["cv"], 1 / math.sqrt(3)), rel=0.03)
    # Vidur GammaRequestIntervalGenerator: shape 1/cv^2, scale 1/(qps shape)
    vd = tools["vidur"]["flags"]
    shape = 1 / vd["--gamma_request_interval_generator_config_cv"] ** 2
    gaps = rng.gamma(shape, 1 / (vd["--gamma_request_interval_generator_config_qps"] * shape), 200_000)
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.01)
    # guidellm SyntheticTextDatasetConfig: known keys, every value an int > 0
    pairs = dict(item.split("=") for item in tools["guidellm"]["flags"]["--data"].split(","))
    assert pairs.pop("kind") == "synthetic_text"
    assert set(pairs) <= GUIDELLM_KEYS and {"prompt_tokens", "output_tokens"} <= set(pairs)
    assert all(int(val) > 0 for val in pairs.values())
    # inference-perf StandardLoadStage and Distribution validators
    cfg = tools["inference-perf"]["config"]
    assert cfg["load"]["interval"] == 0
    for stage in cfg["load"]["stages"]:
        assert isinstance(stage["rate"], float) and stage["rate"] > 0
        assert isinstance(stage["duration"], int) and stage["duration"] > 0
    for dist, s in ((cfg["data"]["input_distribution"], i), (cfg["data"]["output_distribution"], o)):
        assert dist["type"] in ("lognormal", "fixed") and dist["min"] <= dist["max"] and dist["std_dev"] >= 0
        assert dist["mean"] == pytest.approx(s["mean"], abs=0.06) and dist["mean"] > 0


def test_length_mixture_and_stages():
    bundle = {"window_s": 600, "aggregate": {"window_start_s": [0, 600, 1200, 1800], "rate_rps": [1.0, 1.0, 2.0, 0.0]},
              "span_s": 2400, "clients": [
        {"share": 0.75, "windows": {"start_s": [0], "rate_rps": [1.0]},
         "lengths": {"window_start_s": [0], "fields": {"input_tokens": [{"values": [10], "probs": [1.0]}]}}},
        {"share": 0.25, "windows": {"start_s": [0], "rate_rps": [1.0]},
         "lengths": {"window_start_s": [0], "fields": {"input_tokens": [{"values": [20], "probs": [1.0]}]}}}]}
    values, probs = length_mixture(bundle, "input_tokens")
    assert values.tolist() == [10, 20] and probs.tolist() == pytest.approx([0.75, 0.25])
    # inference-perf refuses a rate-0 stage: the idle window is left out and counted
    assert rate_stages(bundle) == ([{"rate": 1.0, "duration": 1200}, {"rate": 2.0, "duration": 600}], 600)
    # a source covering [450, 1500): the first window lasts 150 s, the third 300 s, the last none;
    # 150 + 600 + 2 x 300 = 1350 requests, and the first client's requests weigh its first window's 150 s
    part = {**bundle, "covered": {"start_s": 450.0, "end_s": 1500.0}}
    assert rate_stages(part) == ([{"rate": 1.0, "duration": 750}, {"rate": 2.0, "duration": 300}], 1)
    from servetrace.bundle.coverage import covered_seconds, expected_requests
    assert covered_seconds(part).tolist() == [150.0, 600.0, 300.0, 1.0]  # at least MIN_COVER_S, as the fit
    assert expected_requests(part) == 1350.0


def test_knob_card_without_burstiness_leaves_the_flag_out(fitted):
    _, bundle = fitted
    flat = {**bundle, "aggregate": {**bundle["aggregate"], "cv": [0.0 if v is not None else None
                                                                  for v in bundle["aggregate"]["cv"]]}}
    flat["clients"] = [{**c, "windows": {**c["windows"], "cv": [0.0] * len(c["windows"]["cv"])}} for c in bundle["clients"]]
    card = knob_card(flat)
    assert "--burstiness" not in card["tools"]["vllm"]["flags"]
    assert "--arrival-smoothness" not in card["tools"]["aiperf"]["flags"]
    assert "n/a" in knob_markdown(card)


def test_servegen_export_of_a_fitted_bundle(fitted, tmp_path):
    frame, bundle = fitted
    summary = export_servegen(bundle, tmp_path, model="synthetic")
    assert summary["category"] == "language" and summary["clients"] == 2
    clients = load_pool(tmp_path, "language", "synthetic")
    assert set(clients) == {0, 1}  # ids that are not integers are numbered, the mapping kept
    sidecar = json.loads((tmp_path / "data" / "language" / "synthetic" / "servetrace-export.json").read_text())
    assert {v["id"] for v in sidecar["clients"].values()} == {"a", "b/../c d"}
    # ServeGen fills every window with rate x 600 s arrivals: the exported rates give each client's
    # own request count (the cut first and last windows diluted over the whole window, not counted full)
    exported = {sidecar["clients"][str(cid)]["id"]: sum(d["rate"] * 600 for d in c["trace"].values() if d)
                for cid, c in clients.items()}
    rows = dict(frame.group_by("client_id").len().iter_rows())
    assert exported == {k: pytest.approx(v, rel=1e-9) for k, v in rows.items()}
    t = frame["arrival_s"].to_numpy()
    shift = sidecar["shift_s"]
    assert sidecar["covered"]["start_s"] == t.min() - shift and sidecar["covered"]["end_s"] == t.max() - shift


def test_servegen_export_refusals(fitted, tmp_path):
    _, bundle = fitted
    with pytest.raises(ServetraceError, match="no reason_ratio"):
        export_servegen(bundle, tmp_path, category="reason")
    with pytest.raises(ServetraceError, match="--model"):
        export_servegen(bundle, tmp_path, model="../up")
    with pytest.raises(ServetraceError, match="--category"):
        export_servegen(bundle, tmp_path, category="video")
    assert not (tmp_path / "data").exists()


def test_pmf_literals():
    assert literal_dict(pmf_literal({"values": [3, 7], "probs": [0.25, 0.75]}, "input_tokens")) == {3: 0.25, 7: 0.75}
    ratio = literal_dict(pmf_literal({"values": [0.0, 0.5], "probs": [0.5, 0.5]}, "reason_ratio"))
    assert len(ratio) == 501 and list(ratio)[1] == 1 / 501
    assert list(ratio.values())[250] == 0.5 and sum(ratio.values()) == pytest.approx(1.0)


def test_inference_perf_shared_prefix_from_the_prefix_model(fitted):
    """A bundle with prefix groups (schema v2 `prefix`, `sessions`) gets inference-perf `shared_prefix` data:
    the system prompt length is the groups' prefix length weighted by popularity."""
    from servetrace.exports.inference_perf import shared_prefix

    _, bundle = fitted
    assert shared_prefix(bundle) is None and knob_card(bundle)["tools"]["inference-perf"]["config"]["data"]["type"] == "random"
    v2 = {**bundle, "prefix": {"block_size": 16, "grouped_share": 0.5,
                               "groups": {"tokens": [1024, 256, 64], "popularity": [0.6, 0.3, 0.1], "owners": []}},
          "sessions": {"first_new_tokens": {"probs": [0.0, 0.5, 1.0], "quantiles": [10, 100, 1000]}}}
    card = knob_card(v2)
    data = card["tools"]["inference-perf"]["config"]["data"]
    assert data["type"] == "shared_prefix"
    sp = data["shared_prefix"]
    mean = 0.6 * 1024 + 0.3 * 256 + 0.1 * 64
    assert sp["num_groups"] == 3 and sp["system_prompt_len"]["mean"] == pytest.approx(mean, abs=0.06)
    assert sp["system_prompt_len"]["min"] == 64 and sp["system_prompt_len"]["max"] == 1024
    assert sp["num_prompts_per_group"] == round(card["requests"] * 0.5 / 3)
    assert sp["question_len"]["mean"] == pytest.approx(0.25 * 10 + 0.5 * 100 + 0.25 * 1000, abs=0.06)
    assert sp["output_len"]["mean"] == pytest.approx(card["lengths"]["output_tokens"]["mean"], abs=0.06)
