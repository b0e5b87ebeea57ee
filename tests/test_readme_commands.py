"""Every command form the README documents runs, as written there, on a small real-shaped trace.

The forms are read from the README's indented `servetrace ...` lines; a form without a run here
fails the test, so a newly documented form needs one."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest

from conftest import ROOT, run_cli

SAMPLE = ROOT / "data" / "samples" / "burstgpt_sample.csv"


def _documented_forms() -> set[str]:
    """`servetrace WORDS` up to the first placeholder (upper case) or option, per README line."""
    forms = set()
    for line in (ROOT / "README.md").read_text().splitlines():
        for m in re.finditer(r"servetrace ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)((?: [A-Z_]+)*)", line):
            if line.startswith("    servetrace") or "# also:" in line:
                words, places = m.group(1), m.group(2).split()
                forms.add(f"{words} {' '.join(places[:2])}".strip() if words == "report" else words)
    return forms


# form -> what runs it (each list is one invocation; {w} is the work directory)
RUNS = {
    "ingest": [["ingest", "{w}/small.csv", "--out", "{w}/ing", "--format", "burstgpt", "--json"],
               ["ingest", "{w}/generic.csv", "--out", "{w}/gen_ing", "--map", "t=arrival_s",
                "--map", "i=input_tokens", "--map", "o=output_tokens", "--time-unit", "s"],
               ["ingest", "{w}/pool", "--out", "{w}/pool_ing", "--format", "servegen"]],
    "characterize": [["characterize", "{w}/small.csv", "--out", "{w}/c", "--window", "600", "--group-by",
                      "model,service", "--quiet"]],
    "report DIR": [["report", "{w}/c"], ["report", "{w}/c", "--out", "{w}/one.html"]],
    "report A B": [["report", "{w}/c", "{w}/c2", "--out", "{w}/cmp"]],
    "fit": [["fit", "{w}/c", "--window", "600", "--group-by", "model,service"]],
    "export": [["export", "{w}/c", "--to", "servegen", "--out", "{w}/sg", "--category", "language", "--model", "m"],
               ["export", "{w}/c/bundle.json", "--to", "knobs", "--out", "{w}/knobs"],
               ["export", "{w}/c", "--to", "inference-perf", "--out", "{w}/ip.json"],
               ["export", "{w}/c", "--to", "mooncake", "--out", "{w}/mc.jsonl", "--block-size", "16"],
               ["export", "{w}/c", "--to", "burstgpt", "--out", "{w}/bg.csv"],
               ["export", "{w}/c", "--to", "vidur", "--out", "{w}/vidur.csv"],
               ["export", "{w}/c", "--to", "azure", "--out", "{w}/az.csv"]],
    "bundle from-servegen": [["bundle", "from-servegen", "{w}/pool", "--out", "{w}/from_pool"]],
    "generate": [["generate", "{w}/c/bundle.json", "--out", "{w}/g.parquet", "--duration", "86400", "--start", "0",
                  "--clients", "top:2", "--seed", "3"],
                 ["generate", "{w}/c", "--out", "{w}/g2.csv", "--rate-scale", "2", "--format", "csv"],
                 ["generate", "{w}/c", "--out", "{w}/g3.parquet", "--rate", "0.01", "--duration", "3600"],
                 ["generate", "{w}/c", "--out", "{w}/g4.parquet", "--rate-fn", "{w}/rate.csv", "--duration", "7200"]],
    "validate": [["validate", "{w}/c", "{w}/g.parquet", "--out", "{w}/v", "--window", "600"],
                 ["validate", "{w}/c", "{w}/g.parquet", "--out", "{w}/v2", "--no-page"]],
    "provision": [["provision", "{w}/c", "--out", "{w}/p", "--synthetic", "{w}/g.parquet", "--prefill", "0.00025",
                   "--decode", "0.03", "--batch", "16", "--overhead", "0", "--routing", "random", "--metric", "e2e",
                   "--quantile", "0.9", "--target", "5", "--seed", "1"],
                  ["provision", "{w}/c", "--out", "{w}/p2", "--bundle", "{w}/c/bundle.json"]],
}


def test_every_documented_form_has_a_run():
    missing = _documented_forms() - set(RUNS)
    assert not missing, f"README forms without a run in this test: {sorted(missing)}"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    w = tmp_path_factory.mktemp("readme")
    with open(SAMPLE, "rb") as f:
        (w / "small.csv").write_bytes(b"".join(f.readline() for _ in range(2001)))
    (w / "generic.csv").write_text("t,i,o\n1,10,5\n2,11,6\n4,12,7\n")
    (w / "rate.csv").write_text("window_start_s,rate_rps\n0,0.01\n3600,0.02\n")
    return w


def _run(args: list[str], w) -> None:
    run_cli(*[a.format(w=w) for a in args], check=True)


def test_documented_forms_run(work):
    w = work
    order = ["characterize", "fit", "report DIR", "export", "generate", "validate", "provision"]
    for form in order:
        for args in RUNS[form]:
            _run(args, w)
    run_cli("characterize", w / "small.csv", "--out", w / "c2", "--quiet", check=True)
    for args in RUNS["report A B"] + RUNS["ingest"][:2]:
        _run(args, w)
    (w / "pool").symlink_to(w / "sg" / "data" / "language" / "m")
    for args in RUNS["bundle from-servegen"] + RUNS["ingest"][2:]:
        _run(args, w)
    # What each wrote, checked as values, not only as an exit code.
    assert pq.read_table(w / "ing" / "requests.parquet").num_rows == 2000
    assert pq.read_table(w / "gen_ing" / "requests.parquet").column("input_tokens").to_pylist() == [10, 11, 12]
    assert (w / "cmp" / "report.html").stat().st_size > 0 and (w / "one.html").stat().st_size > 0
    assert json.loads((w / "from_pool" / "bundle.json").read_text())["clients"]
    assert json.loads((w / "p2" / "provision.json").read_text())["traces"]["ours"]["requests"] > 0
    assert json.loads((w / "v" / "fidelity.json").read_text()) and not (w / "v2" / "fidelity.html").exists()
    gen = pq.read_table(w / "g.parquet").column("arrival_s").to_pylist()
    assert gen and 0 <= min(gen) and max(gen) < 86400
