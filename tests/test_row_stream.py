"""characterize reads the rows once for the stages' gaps and the bundle's first pass: its bundle
equals the one `servetrace fit` makes on its own, batch sizes and groupings aside."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, shared_file
from servetrace.bundle.fit import write_bundle
from servetrace.characterization import characterize
from servetrace.rows import read
from servetrace.settings import Settings


def _without_time(bundle: dict) -> dict:
    return {k: v for k, v in bundle.items() if k != "created_at"}


@pytest.mark.parametrize("trace,group_by,batch_rows", [
    (ROOT / "data" / "samples" / "burstgpt_sample.csv", None, 997),
    (ROOT / "data" / "samples" / "burstgpt_sample.csv", "model", 1 << 20),
    ("azure", None, 1500),
])
def test_characterize_bundle_equals_the_standalone_fit(tmp_path, monkeypatch, trace, group_by, batch_rows):
    if trace == "azure":
        trace = shared_file("azure2023", "AzureLLMInferenceTrace_conv.csv")
    monkeypatch.setattr(read, "BATCH_ROWS", batch_rows)
    characterize(trace, tmp_path, Settings(group_by=group_by), quiet=True)
    shared = json.loads((tmp_path / "bundle.json").read_text())
    alone = json.loads(write_bundle(tmp_path, Settings(group_by=group_by)).read_text())
    assert shared["clients"] and _without_time(shared) == _without_time(alone)
    findings = json.loads((tmp_path / "findings.json").read_text())
    assert findings["clients"]["group_by"] == shared["group_by"]
