"""One generic test runs every SQL table's stated checks (sql/checks.json: grain, not null,
ranges) over the tables the fixtures characterize to, as dbt's schema tests do."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

import servetrace
from conftest import FIXTURES, ROOT

CHECKS = json.loads((ROOT / "sql" / "checks.json").read_text())["tables"]
# Traces that between them make every checked table: sessions (BurstGPT v3, Bailian), prefix
# reuse (Bailian, Mooncake), images (Azure multimodal), failures (BurstGPT v1), agents (Baseten,
# Copilot), reasoning ratios and tokens per image (a generic CSV with those columns).
TRACES = ("ingest/burstgpt_v1.csv", "ingest/burstgpt_v3.csv", "ingest/bailian.jsonl", "ingest/mooncake.jsonl",
          "ingest/azure_mm2025.csv.gz", "agentic/baseten.parquet", "agentic/copilot.jsonl.gz",
          "ingest/reasoning_images.csv")


@pytest.fixture(scope="module")
def table_dirs(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("checks")
    dirs = []
    for name in TRACES:
        servetrace.characterize(FIXTURES / name, out / name.replace("/", "-"))
        dirs.append(out / name.replace("/", "-") / "tables")
    servetrace.characterize(ROOT / "data" / "samples" / "burstgpt_sample.csv", out / "sample")
    return dirs + [out / "sample" / "tables"]


def failures(path: Path, spec: dict) -> list[str]:
    con = duckdb.connect()
    con.execute(f"create view t as select * from read_parquet('{path}')")
    cols = {r[0] for r in con.execute("describe t").fetchall()}
    wrong = [f"no column {c}" for c in {*spec["grain"], *spec["not_null"], *spec["range"]} - cols]
    if wrong:
        return wrong
    grain = ", ".join(f'"{c}"' for c in spec["grain"])
    dup = con.execute(f"select count(*) - (select count(*) from (select distinct {grain} from t)) from t").fetchone()[0]
    if dup:
        wrong.append(f"{dup} row(s) repeat the grain ({grain})")
    for c in spec["not_null"]:
        n = con.execute(f'select count(*) from t where "{c}" is null').fetchone()[0]
        if n:
            wrong.append(f"{c}: {n} null(s)")
    for c, (lo, hi) in spec["range"].items():
        cond = " or ".join(p for p in (f'"{c}" < {lo}' if lo is not None else "", f'"{c}" > {hi}' if hi is not None else "") if p)
        n = con.execute(f"select count(*) from t where {cond}").fetchone()[0]
        if n:
            wrong.append(f"{c}: {n} value(s) outside [{lo}, {hi}]")
    return wrong


def test_every_checked_table_is_a_sql_table():
    marts = {p.stem for p in (ROOT / "sql" / "marts").glob("*.sql")}
    assert set(CHECKS) <= marts


@pytest.mark.parametrize("table", sorted(CHECKS))
def test_sql_table_checks(table, table_dirs):
    found = [d / f"{table}.parquet" for d in table_dirs if (d / f"{table}.parquet").exists()]
    assert found, f"no fixture makes {table}: the checks would never run"
    problems = {str(p.relative_to(p.parents[2])): failures(p, CHECKS[table]) for p in found}
    assert not any(problems.values()), problems


def test_the_checks_can_fail(tmp_path):
    import polars as pl

    path = tmp_path / "hourly_profile.parquet"
    pl.DataFrame({"hour": [0, 0, 24], "requests": [1, None, 2], "covered_s": [1.0, 1.0, 1.0],
                  "rate_rps": [0.1, 0.1, -1.0], "relative_rate": [1.0, 1.0, 1.0]}).write_parquet(path)
    found = failures(path, CHECKS["hourly_profile"])
    assert any("repeat the grain" in f for f in found) and any("requests: 1 null" in f for f in found)
    assert any("hour: 1 value(s) outside" in f for f in found) and any("rate_rps: 1 value(s)" in f for f in found)
    assert failures(path, {"grain": ["hour"], "not_null": [], "range": {"nope": [0, 1]}}) == ["no column nope"]


def test_reason_ratio_and_tokens_per_image_hold_the_fixture_s_values(table_dirs):
    """The two tables of the reasoning / image fixture, counted again from the CSV in Python: the
    reason ratio (reasoning / output, clipped at 1, rows with output > 0 and reasoning present) in
    bins of 0.02, and the tokens per image of rows with images and image tokens."""
    import csv

    import numpy as np
    import polars as pl

    rows = list(csv.DictReader((FIXTURES / "ingest" / "reasoning_images.csv").open()))
    tables = next(d for d in table_dirs if d.parent.name == "ingest-reasoning_images.csv")

    ratio = np.array([min(int(r["reasoning_tokens"]) / int(r["output_tokens"]), 1.0) for r in rows
                      if r["reasoning_tokens"] and int(r["output_tokens"]) > 0])
    bins, counts = np.unique(np.minimum(np.floor(ratio * 50).astype(int), 49), return_counts=True)
    got = pl.read_parquet(tables / "reason_ratio.parquet").sort("bin_idx")
    assert got["bin_idx"].to_list() == bins.tolist() == [0, 5, 17, 25, 40, 49]
    assert got["requests"].to_list() == counts.tolist()
    assert got["requests"].sum() == 65 and counts[-1] == 19  # the 1.25 ratios are clipped into the last bin
    np.testing.assert_allclose(got["share"].to_numpy(), counts / counts.sum(), rtol=1e-12)
    np.testing.assert_allclose(got["cdf"].to_numpy(), np.cumsum(counts) / counts.sum(), rtol=1e-12)
    np.testing.assert_allclose(got["ratio_lo"].to_numpy(), bins / 50, rtol=1e-12)

    tpi = np.array([int(r["image_tokens"]) / int(r["num_images"]) for r in rows
                    if int(r["num_images"]) > 0 and r["image_tokens"]])
    values, counts = np.unique(tpi, return_counts=True)
    got = pl.read_parquet(tables / "multimodal_tokens_per_image.parquet").sort("tokens_per_image")
    assert got["tokens_per_image"].to_list() == values.tolist() == [85.0, 765.0, 1105.0]
    assert got["requests"].to_list() == counts.tolist() == [20, 21, 21]
    np.testing.assert_allclose(got["share"].to_numpy(), counts / counts.sum(), rtol=1e-12)
