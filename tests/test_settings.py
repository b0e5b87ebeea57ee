"""One settings tree (servetrace.settings): its values reach the stages and the fit, and
findings.json and bundle.json record the same settings, whole."""

from __future__ import annotations

import json

import polars as pl

import servetrace
from conftest import shared_file
from servetrace.settings import DEFAULTS, FitSettings, StageSettings, tree


def _doc(out, name):
    return json.loads((out / name).read_text())


def test_findings_and_bundle_record_the_same_whole_settings(tmp_path):
    servetrace.characterize(shared_file("burstgpt", "BurstGPT_1_head400.csv"), tmp_path, window_s=300)
    findings, bundle = _doc(tmp_path, "findings.json"), _doc(tmp_path, "bundle.json")
    assert findings["settings"] == bundle["settings"]
    recorded = findings["settings"]
    defaults = tree()
    assert recorded["stages"] == defaults["stages"] and recorded["fit"] == defaults["fit"]
    assert recorded["window_s"] == 300 and recorded["group_by"] == bundle["group_by"]
    assert recorded["ingest"] == {"format": "auto", "mapping": {}, "time_unit": "auto",
                                  "outliers": defaults["ingest"]["outliers"]}
    assert "memory_limit" not in recorded and "threads" not in recorded  # resources change no number


def test_a_threshold_set_in_the_tree_is_the_one_used_and_recorded(tmp_path):
    trace = shared_file("burstgpt", "BurstGPT_1_head400.csv")
    stages, fit = StageSettings(ks_fits=0.5, bic_margin=7.0), FitSettings(max_clients=1, ks_sample=50)
    servetrace.characterize(trace, tmp_path, stages=stages, fit=fit)
    findings, bundle = _doc(tmp_path, "findings.json"), _doc(tmp_path, "bundle.json")
    assert findings["settings"] == bundle["settings"]
    assert findings["settings"]["stages"]["ks_fits"] == 0.5 and bundle["settings"]["fit"]["max_clients"] == 1
    best = findings["lengths"]["input"]["best_fit"]
    assert best["ks_max"] == 0.5 and best["fits"] == (best["ks"] <= 0.5) and "within 7 of" in best["chosen_by"]
    assert "KS <= 0.5" in findings["lengths"]["fit_sample_note"]
    assert [c["id"] for c in bundle["clients"]] == ["(other)"]  # every group merged past the cap of 1
    assert DEFAULTS.stages.ks_fits == 0.05 and DEFAULTS.fit.max_clients == 256  # the defaults did not move


def test_tree_has_every_branch_with_documented_defaults():
    t = tree()
    assert set(t) == {"ingest", "run", "stages", "fit", "generate", "fidelity", "provision"}
    assert t["stages"]["ks_fits"] == 0.05 and t["stages"]["bic_margin"] == 2.0
    assert (t["stages"]["drift_ks"], t["stages"]["drift_alpha"], t["stages"]["peak_prominence"]) == (0.1, 0.001, 0.25)
    assert t["fidelity"]["rate_mape"] == 0.05 and t["provision"]["target_s"] == 2.0 and t["generate"]["seed"] == 0


def test_the_arrival_model_gap_and_session_branches_are_used_and_recorded(tmp_path):
    """Thresholds of the arrival-model choice, the quality stage's longest gaps and the session
    model are read from the tree: a non-default value changes the output and is recorded."""
    from servetrace.settings import ArrivalModelSettings, SessionModelSettings

    trace = shared_file("burstgpt", "BurstGPT_1_head400.csv")
    stages = StageSettings(top_gaps=3)
    fit = FitSettings(arrival_model=ArrivalModelSettings(candidates=("renewal",), seeds=(7, 8), scales_s=(1.0, 10.0)),
                      sessions=SessionModelSettings(quantile_points=11))
    servetrace.characterize(trace, tmp_path, stages=stages, fit=fit)
    findings, bundle = _doc(tmp_path, "findings.json"), _doc(tmp_path, "bundle.json")
    assert findings["settings"] == bundle["settings"]
    recorded = findings["settings"]
    assert recorded["stages"]["top_gaps"] == 3 and recorded["fit"]["arrival_model"]["candidates"] == ["renewal"]
    assert recorded["fit"]["sessions"]["quantile_points"] == 11
    assert recorded["fit"]["arrival_model"]["modulation"] == tree()["fit"]["arrival_model"]["modulation"]
    model = bundle["arrival_model"]
    assert model["chosen"] == "renewal" and list(model["candidates"]) == ["renewal"]
    assert model["scales_s"] == [1.0, 10.0] and "seeds [7, 8]" in model["note"]
    assert len(pl.read_parquet(tmp_path / "tables" / "quality_gaps.parquet")) == 3


def test_the_reuse_and_session_branches_reach_the_session_model(tmp_path):
    """A trace with sessions and block hashes: the session model keeps `quantile_points`
    quantiles and at most `max_groups` prefix groups, as set."""
    from servetrace.settings import ReuseSettings, SessionModelSettings

    trace = shared_file("mooncake", "synthetic_trace.jsonl")
    fit = FitSettings(sessions=SessionModelSettings(quantile_points=5, max_groups=2))
    stages = StageSettings(reuse=ReuseSettings(distance_sample=100, coarser_blocks=()))
    servetrace.characterize(trace, tmp_path, stages=stages, fit=fit)
    bundle = _doc(tmp_path, "bundle.json")
    assert bundle["sessions"]["first_new_tokens"]["probs"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len(bundle["prefix"]["groups"]["tokens"]) == 2
    findings = _doc(tmp_path, "findings.json")
    assert findings["prefix"]["block_sizes"] == [512]  # 2048 by default: re-blocking turned off
    assert bundle["settings"]["stages"]["reuse"]["coarser_blocks"] == []
