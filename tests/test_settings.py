"""One settings tree (servetrace.settings): its values reach the stages and the fit, and
findings.json and bundle.json record the same settings, whole."""

from __future__ import annotations

import json

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
    assert recorded["ingest"] == {"format": "auto", "mapping": {}, "time_unit": "auto"}
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
