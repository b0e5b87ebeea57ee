"""Our exports and every command we print, run through the consumers' released code.

AIPerf 0.13.0 and guidellm 0.8.1 run installed in .venv-consumers (tests/consumers/env.sh, which
`make test` calls): their trace loaders read our files and their own CLI parsers take every printed
command (tests/consumers/check.py). inference-perf 0.7.0's reader, config model and length sampler
run from its wheel. vLLM 0.34.0 and SGLang 0.5.23 need torch: their wheels' benchmark code is read,
and every flag we print must be one their argument parsers define. Three real traces (BurstGPT,
Azure 2023 conversation, Mooncake synthetic) are ingested, fitted and exported through the CLI."""

from __future__ import annotations

import csv
import json
import re
import shlex
import subprocess
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conftest import ROOT, run_cli, shared_file

ENV = ROOT / ".venv-consumers"
SRC = ENV / "src"
TRACES = {"burstgpt": ("burstgpt", "BurstGPT_1_head400.csv"), "azure": ("azure2023", "AzureLLMInferenceTrace_conv.csv"),
          "mooncake": ("mooncake", "synthetic_trace.jsonl")}
RELEASES = {"aiperf": "aiperf 0.13.0", "guidellm": "guidellm 0.8.1", "vllm": "vllm 0.34.0", "sglang": "sglang 0.5.23",
            "inference-perf": "inference-perf 0.7.0"}
SAMPLES = 100_000


def _pypi_reachable() -> bool:
    """Whether PyPI answers (through the environment's proxy, if any, as pip would)."""
    try:
        urllib.request.urlopen(urllib.request.Request("https://pypi.org/simple/aiperf/", method="HEAD"), timeout=10)
        return True
    except OSError:
        return False


def consumer_env() -> Path:
    """.venv-consumers, built if absent (`make test` builds it first). A broken build fails the tests with pip's
    last lines; only when PyPI cannot be reached are they skipped, saying so."""
    if not (ENV / ".installed").exists():
        subprocess.run(["bash", str(ROOT / "tests" / "consumers" / "env.sh")], cwd=ROOT, check=False)
    if not (ENV / ".installed").exists():
        log = (ENV / "FAILED").read_text() if (ENV / "FAILED").exists() else "(no log)"
        if not _pypi_reachable():
            pytest.skip("CONSUMER CODE NOT RUN: PyPI is unreachable, so .venv-consumers (AIPerf 0.13.0, guidellm "
                        f"0.8.1, vLLM/SGLang/inference-perf wheels) could not be built:\n{log}")
        pytest.fail(f".venv-consumers could not be built although PyPI is reachable:\n{log}")
    return ENV / "bin" / "python"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Each real trace ingested, fitted and exported in every format (in process; the first trace's exports
    through the CLI too, whose printed lines are checked)."""
    from servetrace.bundle.cli_support import fit_to_bundle
    from servetrace.exports import export
    from servetrace.ingest import ingest_trace
    from servetrace.settings import Settings

    root = tmp_path_factory.mktemp("consumers")
    out = {}
    for k, (name, parts) in enumerate(TRACES.items()):
        src = shared_file(*parts)
        d = root / name
        ingest_trace(src, d)
        fit_to_bundle(d, Settings())
        files = {"mooncake": d / "trace.jsonl", "burstgpt": d / "burst.csv", "vidur": d / "vidur.csv",
                 "azure": d / "azure.csv", "knobs": d / "knobs", "inference-perf": d / "inference-perf.yml"}
        printed = {}
        for to, path in files.items():
            if k == 0:
                printed[to] = run_cli("export", d, "--to", to, "--out", path, check=True).stdout
            else:
                export(d, to, path)
        out[name] = {"dir": d, "files": files, "printed": printed,
                     "rows": pl.read_parquet(d / "requests.parquet"),
                     "card": json.loads((files["knobs"] / "knobs.json").read_text()),
                     "meta": {to: json.loads(Path(f"{p}.meta.json").read_text())
                              for to, p in files.items() if Path(f"{p}.meta.json").exists()}}
    return out


def printed_commands(m: dict) -> list[dict]:
    """Every command the exports print: sidecars and knob card, each with the release it names."""
    found = [dict(entry, source=f"{to} sidecar", tool=tool) for to, meta in m["meta"].items()
             for tool, entry in meta["consumers"].items()]
    found += [{"release": t["release"], "command": t["command"], "source": "knob card", "tool": tool}
              for tool, t in m["card"]["tools"].items()]
    return found


@pytest.fixture(scope="module")
def ran(made, tmp_path_factory):
    """One run of the consumers' code over every job (their imports cost seconds: one process)."""
    python = consumer_env()
    ip_src = str(SRC / "inference_perf-0.7.0")
    jobs, index = [], {}

    def add(key, **job):
        index[key] = len(jobs)
        jobs.append(job)

    for name, m in made.items():
        d, f, card = str(m["dir"]), m["files"], m["card"]
        for k, c in enumerate(printed_commands(m)):
            tool = c["tool"]
            if tool in ("aiperf", "guidellm"):
                add((name, "cmd", k), kind=f"{tool}-command", command=c["command"], cwd=d)
        burst = m["meta"]["burstgpt"]
        add((name, "aiperf-burstgpt"), kind="aiperf-load", type="burst_gpt_trace",
            path=str(m["dir"] / burst["aiperf_file"]["name"]))
        add((name, "aiperf-burstgpt-all-rows"), kind="aiperf-load", type="burst_gpt_trace", path=str(f["burstgpt"]))
        add((name, "aiperf-mooncake"), kind="aiperf-load", type="mooncake_trace", path=str(f["mooncake"]))
        add((name, "ip-azure"), kind="inference-perf-azure", src=ip_src, path=str(f["azure"]))
        add((name, "ip-azure-config"), kind="inference-perf-config", src=ip_src,
            path=str(m["dir"] / m["meta"]["azure"]["inference_perf_config"]))
        add((name, "ip-config"), kind="inference-perf-config", src=ip_src, path=str(f["inference-perf"]))
        for field, key in (("input_tokens", "prompt_tokens"), ("output_tokens", "output_tokens")):
            a = card["tools"]["aiperf"]["lengths_realized"][field]
            add((name, "aiperf-sample", field), kind="aiperf-sample", mean=a["mean"], stddev=a["stddev"], n=SAMPLES)
            g = card["tools"]["guidellm"]["lengths_realized"][key]
            flags = dict(p.split("=") for p in card["tools"]["guidellm"]["flags"]["--data"].split(","))
            add((name, "guidellm-sample", field), kind="guidellm-sample", mean=g["mean"], stddev=g["stddev"],
                min=int(flags[f"{key}_min"]), max=int(flags[f"{key}_max"]), n=SAMPLES)
            data = card["tools"]["inference-perf"]["config"]["data"]
            if data["type"] == "random":  # (a trace with a prefix model gets shared_prefix data instead)
                dist = data[f"{field.split('_')[0]}_distribution"]
                add((name, "ip-sample", field), kind="inference-perf-lengths", src=ip_src, dist=dist, n=SAMPLES)
    # a bundle with a prefix model (schema v2) gets shared_prefix data: inference-perf's Config must take it
    first = next(iter(made.values()))
    from servetrace.bundle.model import load_bundle
    from servetrace.exports.inference_perf import export_inference_perf
    from servetrace.exports.knobs import knob_card

    v2 = {**load_bundle(first["dir"]), "prefix": {"block_size": 16, "grouped_share": 0.4, "groups": {
        "tokens": [2048, 300], "popularity": [0.7, 0.3], "owners": []}}}
    export_inference_perf(knob_card(v2), first["dir"] / "prefix.yml")
    add("ip-prefix-config", kind="inference-perf-config", src=ip_src, path=str(first["dir"] / "prefix.yml"))
    # what the previous printed forms ran into, so the checks above can fail
    add("old-guidellm", kind="guidellm-command", cwd=str(first["dir"]),
        command="guidellm benchmark --data kind=mooncake,path=trace.jsonl --rate 1 --max-seconds 10")
    add("old-aiperf", kind="aiperf-command", cwd=str(first["dir"]),
        command="aiperf profile --model MODEL --input-file trace.jsonl --custom-dataset-type mooncake_trace "
                "--fixed-schedule --fixed-schedule-speedup 2")
    tmp = tmp_path_factory.mktemp("jobs")
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    proc = subprocess.run([str(python), str(ROOT / "tests" / "consumers" / "check.py"), str(tmp / "jobs.json"),
                           str(tmp / "results.json")], capture_output=True, text=True, cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp / "results.json").read_text())
    return {key: results[i] for key, i in index.items()}


def ok(result: dict) -> dict:
    assert result["ok"], result.get("error", "") + "\n" + result.get("trace", "")
    return result


def test_every_printed_command_names_its_release(made):
    for m in made.values():
        commands = printed_commands(m)
        assert {c["tool"] for c in commands} >= {"vllm", "sglang", "aiperf", "guidellm", "inference-perf", "vidur"}
        for c in commands:
            assert c["release"] and c["command"]
            if c["tool"] in RELEASES:
                assert c["release"] == RELEASES[c["tool"]]
        for text in m["printed"].values():  # the CLI prints each command after the release it was checked with
            for line in text.splitlines()[1:]:
                assert re.match(r"^[\w .@()-]+ \S+: \S+", line), line


def test_aiperf_and_guidellm_parse_every_printed_command(made, ran):
    for name, m in made.items():
        for k, c in enumerate(printed_commands(m)):
            if c["tool"] not in ("aiperf", "guidellm"):
                continue
            r = ok(ran[(name, "cmd", k)])
            if c["tool"] == "guidellm" and c["source"] == "mooncake sidecar":
                rows = r["rows"]  # guidellm's own deserializer and row checks over the whole file
                lines = [json.loads(x) for x in m["files"]["mooncake"].read_text().splitlines()]
                assert len(rows) == len(lines) == m["rows"].height
                assert [row[1:] for row in rows] == [[x["input_length"], x["output_length"], len(x["hash_ids"])]
                                                     for x in lines]
                assert r["data"][0]["time_scale"] == 0.001 and r["profile"]["kind"] == "replay"
            if c["tool"] == "guidellm" and c["source"] == "knob card":
                rate = m["card"]["tools"]["vllm"]["flags"]["--request-rate"]
                assert r["profile"]["kind"] == "poisson" and r["profile"]["rate"] == [pytest.approx(rate)]
                assert r["constraints"][0]["kind"] == "max_duration"
                # the source's covered seconds: rate x seconds is the source's request count
                assert r["constraints"][0]["seconds"] == round(m["card"]["covered"]["seconds"])
            if c["tool"] == "aiperf" and c["source"] != "knob card":
                assert r["phase_type"] == "fixed_schedule" and r["dataset_type"] == "file"
            if c["tool"] == "aiperf" and c["source"] == "knob card":
                flags = m["card"]["tools"]["aiperf"]["flags"]
                assert r["phase_type"] == "gamma" and r["requests"] == flags["--request-count"]
                assert r["isl"] == {"mean": flags["--synthetic-input-tokens-mean"],
                                    "stddev": flags["--synthetic-input-tokens-stddev"]}


def test_previous_printed_forms_are_refused(ran):
    assert "No such command 'benchmark'" in ran["old-guidellm"]["error"]
    assert "--fixed-schedule-speedup" in ran["old-aiperf"]["error"]


def test_aiperf_loads_our_trace_files(made, ran):
    for name, m in made.items():
        rows = m["rows"]
        ok_rows = rows.filter(pl.col("output_tokens") > 0)
        burst = ok(ran[(name, "aiperf-burstgpt")])["rows"]
        assert len(burst) == ok_rows.height == m["meta"]["burstgpt"]["aiperf_file"]["requests"]
        t = np.floor(ok_rows["arrival_s"].to_numpy() - rows["arrival_s"].min()) * 1000.0
        np.testing.assert_array_equal(sorted(r[0] for r in burst), np.sort(t))
        assert sorted(r[2] for r in burst) == sorted(ok_rows["output_tokens"].to_list())
        failed = rows.height - ok_rows.height
        if failed:  # the whole file, failures included, is what AIPerf refuses: why the second file exists
            assert "max_tokens" in ran[(name, "aiperf-burstgpt-all-rows")]["error"]
        moon = ok(ran[(name, "aiperf-mooncake")])
        assert moon["sessions"] == len(moon["rows"]) == rows.height
        lines = [json.loads(x) for x in m["files"]["mooncake"].read_text().splitlines()]
        assert [r[0] for r in moon["rows"]] == sorted(x["timestamp"] for x in lines)
        assert sorted(r[2] for r in moon["rows"]) == sorted(x["output_length"] for x in lines)
    assert any(made[n]["rows"].height > made[n]["rows"].filter(pl.col("output_tokens") > 0).height for n in made)


def test_inference_perf_reads_the_azure_csv_and_configs(made, ran):
    for name, m in made.items():
        rows = m["rows"]
        r = ok(ran[(name, "ip-azure")])
        assert r["has_header"] and len(r["rows"]) == rows.height
        got = np.array(r["rows"], dtype=float)
        rel = rows["arrival_s"].to_numpy() - rows["arrival_s"][0]
        np.testing.assert_allclose(got[:, 0], rel, atol=2e-6)  # microseconds, as it parses them
        np.testing.assert_array_equal(got[:, 1], rows["input_tokens"].to_numpy())
        np.testing.assert_array_equal(got[:, 2], rows["output_tokens"].to_numpy())
        cfg = ok(ran[(name, "ip-azure-config")])
        assert cfg["load"]["type"] == "trace_replay" and cfg["load"]["trace"]["file"] == "azure.csv"
        cfg = ok(ran[(name, "ip-config")])
        stages = m["card"]["tools"]["inference-perf"]["config"]["load"]["stages"]
        assert cfg["load"]["type"] == "poisson" and cfg["load"]["interval"] == 0
        assert [(s["rate"], s["duration"]) for s in cfg["load"]["stages"]] == [(s["rate"], s["duration"]) for s in stages]
        with open(m["files"]["azure"], newline="") as fh:
            assert next(csv.reader(fh)) == ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
    cfg = ok(ran["ip-prefix-config"])
    assert cfg["data"]["type"] == "shared_prefix"
    assert cfg["data"]["shared_prefix"]["num_unique_system_prompts"] == 2


def test_synthetic_lengths_realize_the_trace_in_each_tool(made, ran):
    """The card's length parameters through AIPerf's, guidellm's and inference-perf's own samplers: realized
    mean within 2 % of the trace's (sampling noise at 100 k draws is < 0.5 %), std within 5 % where the card
    says the tool matches, and equal to the card's stated realized std where it says it cannot."""
    for name, m in made.items():
        lens = m["card"]["lengths"]
        for field in ("input_tokens", "output_tokens"):
            target = lens[field]
            for tool, key in (("aiperf", field), ("guidellm", {"input_tokens": "prompt_tokens"}.get(field, field))):
                stated = m["card"]["tools"][tool]["lengths_realized"][key]
                got = ok(ran[(name, f"{tool}-sample", field)])
                assert got["mean"] == pytest.approx(target["mean"], rel=0.02), (name, tool, field)
                assert got["mean"] == pytest.approx(stated["realized"]["mean"], rel=0.02)
                assert got["std"] == pytest.approx(stated["realized"]["std"], rel=0.05), (name, tool, field)
                if stated["matched"]:
                    assert got["std"] == pytest.approx(target["std"], rel=0.05)
                else:
                    assert any(f"std {stated['realized']['std']:.0f}" in t
                               for t in m["card"]["tools"][tool]["cannot_express"])
            if (name, "ip-sample", field) in ran:
                ip = ok(ran[(name, "ip-sample", field)])
                assert ip["min"] >= target["min"] and ip["max"] <= target["max"]


def _flags(command: str) -> set[str]:
    return {t.split("=")[0] for t in shlex.split(command) if t.startswith("--")}


def _source(*parts: str) -> str:
    consumer_env()
    return "\n".join(p.read_text() for part in parts for p in sorted(SRC.glob(part)))


def test_vllm_and_sglang_releases_define_every_printed_flag(made):
    """vLLM 0.34.0 and SGLang 0.5.23 (their wheels' benchmark code): every flag we print is an argument their
    parsers define, every dataset name one they register, and the loader facts the exports rely on hold."""
    vllm = _source("vllm-0.34.0/vllm/benchmarks/*.py", "vllm-0.34.0/vllm/benchmarks/datasets/*.py")
    sglang = _source("sglang-0.5.23/sglang/bench_serving.py", "sglang-0.5.23/sglang/benchmark/**/*.py")
    assert 'kwargs.get("timed_trace_chunk_hash_size", 16)' in vllm  # why B is always passed
    assert 'gpt4_df["Response tokens"] > 0' in vllm and 'df["Model"] == "GPT-4"' in vllm
    assert '"mooncake": MooncakeDataset' in sglang
    for m in made.values():
        for c in printed_commands(m):
            if c["tool"] == "vllm":
                text, name = vllm, c["command"].split("--dataset-name ")[1].split()[0]
            elif c["tool"] == "sglang":
                text, name = sglang, c["command"].split("--dataset-name ")[1].split()[0]
            else:
                continue
            assert f'"{name}"' in text, (c["tool"], name)
            missing = [f for f in _flags(c["command"]) if f'"{f}"' not in text]
            assert not missing, (c["tool"], c["source"], missing)


def test_azure_timestamps_keep_the_trace_date(made):
    m = made["azure"]
    first = m["files"]["azure"].read_text().splitlines()[1].split(",")[0]
    src = shared_file(*TRACES["azure"]).read_text().splitlines()[1].split(",")[0]
    ours = datetime.strptime(first, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
    theirs = datetime.strptime(src[:26], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
    assert abs((ours - theirs).total_seconds()) < 1e-5
