"""bench/compare_outputs.py: equal outputs give no difference, each changed number is reported."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the bench package lives at the repository root, beside pipeline/
    sys.path.insert(0, str(REPO))

from bench.compare_outputs import compare  # noqa: E402


def _outputs(d, findings: dict, table: pl.DataFrame):
    (d / "tables").mkdir(parents=True)
    (d / "findings.json").write_text(json.dumps(findings))
    (d / "bundle.json").write_text(json.dumps({"clients": [{"id": "a", "share": 1.0}]}))
    table.write_parquet(d / "tables" / "t.parquet")
    return d


def test_equal_outputs_and_rows_in_another_order_differ_nowhere(tmp_path):
    table = pl.DataFrame({"k": [1, 2, 3], "x": [0.5, 1.5, float("nan")]})
    a = _outputs(tmp_path / "a", {"created_at": "then", "lengths": {"s": 1.25}}, table)
    b = _outputs(tmp_path / "b", {"created_at": "now", "lengths": {"s": 1.25}}, table.reverse())
    assert compare(a, b) == 0


def test_each_changed_number_counts(tmp_path, capsys):
    table = pl.DataFrame({"k": [1, 2], "x": [0.5, 1.5]})
    a = _outputs(tmp_path / "a", {"lengths": {"s": 1.25, "n": [1, 2]}}, table)
    b = _outputs(tmp_path / "b", {"lengths": {"s": 1.2500001, "n": [1, 3]}}, table.with_columns(pl.col("x") * 2))
    assert compare(a, b) == 3
    out = capsys.readouterr().out
    assert "/lengths/s: 1.25 -> 1.2500001" in out and "/lengths/n[1]: 2 -> 3" in out
    assert "tables/t.parquet: x: max abs 1.5" in out
