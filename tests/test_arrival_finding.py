"""The chosen arrival model and every candidate's evidence reach findings.json (arrivals area) and
the report, with the same figures bundle.json keeps; the source's figures there are recomputed here."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest

from servetrace.bundle.arrival_finding import arrival_model_finding
from servetrace.characterization import characterize
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def azure(tmp_path_factory):
    out = tmp_path_factory.mktemp("azure") / "conv"
    characterize(shared_file("azure2023", "AzureLLMInferenceTrace_conv.csv"), out, quiet=True)
    return out


def test_findings_carry_the_chosen_model_and_every_candidate(azure):
    found = json.loads((azure / "findings.json").read_text())["arrivals"]["arrival_model"]
    model = json.loads((azure / "bundle.json").read_text())["arrival_model"]
    assert found["chosen"] == model["chosen"]
    assert set(found["candidates"]) == {"renewal", "cox", "cox-renewal"}
    scores = {n: c["score"] for n, c in found["candidates"].items()}
    assert found["chosen"] == min(scores, key=scores.get)
    for name, ev in found["candidates"].items():
        for key in ("idc_error_mean", "iat_ks", "iat_cv", "score"):
            assert ev[key] == pytest.approx(model["candidates"][name][key], rel=1e-9)
        # the score is the IDC-curve error (mean over the scored scales) plus the inter-arrival KS
        scored = [ev["idc_error"][str(int(s))] for s in found["scored_scales_s"]]
        assert ev["idc_error_mean"] == pytest.approx(np.mean(scored), rel=1e-9)
        assert ev["score"] == pytest.approx(ev["idc_error_mean"] + ev["iat_ks"], rel=1e-9)
    # Azure conversation is bursty beyond a renewal process: a modulated model wins by its IDC error
    assert found["chosen"] != "renewal"
    # ... and beats renewal by more than its own seed-to-seed floor (else renewal, the simpler, is kept)
    floor = max(np.mean([found["candidates"][n]["idc_seed_floor"][str(int(s))] for s in found["scored_scales_s"]])
                for n in (found["chosen"], "renewal"))
    assert scores["renewal"] - scores[found["chosen"]] > floor
    assert found["candidates"]["renewal"]["idc_error_mean"] > 2 * found["candidates"][found["chosen"]]["idc_error_mean"]
    assert found["modulation"]["rms_log_error"] < 0.1
    assert found["chosen"] in found["statement"]


def test_the_source_figures_are_the_requests_own(azure):
    t = np.sort(pl.read_parquet(azure / "requests.parquet")["arrival_s"].to_numpy())
    source = json.loads((azure / "findings.json").read_text())["arrivals"]["arrival_model"]["source"]
    gaps = np.diff(t)
    assert source["iat_cv"] == pytest.approx(gaps.std() / gaps.mean(), rel=1e-6)
    counts = np.bincount(((t - t[0]) // 10).astype(np.int64))[: int((t[-1] - t[0]) // 10)]  # whole 10 s bins
    assert source["idc"]["10"] == pytest.approx(counts.var() / counts.mean(), rel=1e-6)


def test_the_report_shows_the_candidates_with_the_winner_first(azure):
    page = (azure / "report.html").read_text(encoding="utf-8")
    table = re.search(r"Arrival model candidates.*?</table>", page, re.S).group(0)
    rows = re.findall(r"<tr><td>([^<]+)</td>", table)
    chosen = json.loads((azure / "findings.json").read_text())["arrivals"]["arrival_model"]["chosen"]
    assert rows[0] == f"{chosen} (chosen)"
    assert sorted(rows[1:3]) == sorted({"renewal", "cox", "cox-renewal"} - {chosen}) and rows[3] == "source"


def test_no_model_is_an_absent_reason():
    assert "absent" in arrival_model_finding(None)
