"""Bad input: every degenerate trace still yields findings.json, with reasons for what is absent."""

import json

import numpy as np
import pytest

from servetrace.characterization import write_outputs
from servetrace.findings import validate
from test_stages_support import canonical, run_stages

CASES = {
    "one_row": lambda: canonical([5.0], input_tokens=[10], output_tokens=[3]),
    "identical_timestamps": lambda: canonical(np.full(50, 7.0), input_tokens=np.arange(1, 51), output_tokens=np.ones(50)),
    "two_rows": lambda: canonical([1.0, 2.0], input_tokens=[1, 2], output_tokens=[1, 2]),
    "all_null_lengths": lambda: canonical(np.arange(100.0)),
    "one_client_no_failures": lambda: canonical(np.arange(0, 5000.0, 3.3), client_id=["solo"] * 1516,
                                                input_tokens=np.full(1516, 4), output_tokens=np.full(1516, 4)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_degenerate_trace_writes_findings(tmp_path, case):
    findings, tables = run_stages(tmp_path, CASES[case]())
    validate(findings)
    write_outputs(tmp_path, findings, tables)
    doc = json.loads((tmp_path / "findings.json").read_text())
    assert doc["schema"] == "servetrace.findings/v1"
    for area in ("sessions", "reasoning", "multimodal", "prefix"):
        assert doc[area]["absent"]
    if case in ("one_row", "two_rows"):
        assert "too few" in doc["arrivals"]["absent"]
    if case == "identical_timestamps":
        assert "zero span" in doc["arrivals"]["absent"]
        assert doc["trace"]["span_s"] == 0
    if case == "all_null_lengths":
        assert "entirely null" in doc["lengths"]["absent"]
    if case == "one_client_no_failures":
        assert doc["failures"]["rate"] == 0
        assert "no failed" in doc["failures"]["vs_load"]["absent"]
        assert doc["clients"]["count"] == 1 and "one group" in doc["clients"]["gini"]["absent"]
        assert doc["arrivals"]["iat_cv"] == pytest.approx(0.0, abs=1e-9)
