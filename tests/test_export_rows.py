"""Row exports read back by readers written from the format specs: Mooncake timed JSONL
(with the hash_ids invariant), BurstGPT v1 CSV as vLLM's loader reads it, Vidur CSV."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from servetrace.errors import ServetraceError
from servetrace.exports import export
from servetrace.io import write_parquet
from servetrace.schema import CANONICAL, HASH_IDS


@pytest.fixture()
def rows_path(tmp_path):
    rng = np.random.default_rng(3)
    n = 500
    arrival = np.sort(rng.uniform(10.0, 1000.0, n))
    arrival[5] = arrival[4]  # a tie
    inp = rng.integers(0, 5000, n).astype(np.int32)
    inp[0] = 0
    out = rng.integers(0, 800, n).astype(np.int32)
    failed = rng.random(n) < 0.05
    out[failed] = 0
    cols = {"arrival_s": arrival, "client_id": None, "session_id": None, "model": ["gpt"] * n,
            "service": ["api" if i % 3 == 0 else "conversation" for i in range(n)], "input_tokens": inp,
            "output_tokens": out, "reason_tokens": None, "image_count": None, "image_tokens": None,
            "latency_s": None, "failed": failed}
    table = pa.table({f.name: (pa.nulls(n, f.type) if cols.get(f.name) is None else pa.array(cols[f.name], type=f.type))
                      for f in CANONICAL}, schema=CANONICAL)
    hashes = [[int(h) for h in range(9000 + 10 * i, 9000 + 10 * i + math.ceil(max(inp[i], 1) / 512))] if i % 7 == 0 else None
              for i in range(n)]
    hashes[14] = hashes[14] + [1]  # one id too many for 512-token blocks: must be replaced
    hashes[21][0] = hashes[7][0]  # a shared first block: equal ids must stay equal
    table = table.append_column(HASH_IDS, pa.array(hashes, type=pa.list_(pa.int64())))
    path = tmp_path / "requests.parquet"
    write_parquet(path, table, {"servetrace.source": "synthetic.csv", "servetrace.sha256": "ab"})
    return path


def guidellm_mooncake_rows(path, hash_id_block_size=512) -> list[dict]:
    """guidellm's kind=mooncake loader (vllm-project/guidellm src/guidellm/data/deserializers/trace_mooncake.py):
    int32 columns, _validate_row, rows sorted by timestamp, relative_timestamp = ts - ts[0] (seconds)."""
    rows = [json.loads(line) for line in open(path)]
    for r in rows:
        for col in ("input_length", "output_length"):
            assert -2**31 <= r[col] < 2**31
        assert all(0 <= h < 2**31 for h in r["hash_ids"]), "hash ids must be >= 0 and int32"
        assert math.ceil(r["input_length"] / hash_id_block_size) == len(r["hash_ids"]), r
    rows.sort(key=lambda r: float(r["timestamp"]))
    return [{**r, "relative_timestamp": float(r["timestamp"]) - float(rows[0]["timestamp"])} for r in rows]


def vllm_timed_trace_prompt_lens(path, num_prompts: int, chunk_size: int = 16) -> list[int]:
    """vLLM TimedTrace as its Rust port describes it: the first num_prompts rows, each hash id expands
    to chunk_size tokens until input_length is reached (the last chunk partial); too few ids -> shorter."""
    lens = []
    for line in list(open(path))[:num_prompts]:
        r = json.loads(line)
        remaining = r["input_length"]
        for _ in r.get("hash_ids", []):
            remaining -= min(remaining, chunk_size)
            if remaining == 0:
                break
        lens.append(r["input_length"] - remaining)
    return lens


def aiperf_conversations(path) -> int:
    """AIPerf's MooncakeTrace model and loader (ai-dynamo/aiperf src/aiperf/dataset/loader/models.py,
    mooncake_trace.py): exactly one input mode, hash_ids only with input_length, timestamp a number of
    ms; rows without session_id are one conversation each."""
    sessions = set()
    for i, line in enumerate(open(path)):
        r = json.loads(line)
        modes = [k for k in ("input_length", "text_input", "messages", "payload") if r.get(k) is not None]
        assert modes == ["input_length"] and isinstance(r["input_length"], int)
        assert isinstance(r["timestamp"], (int, float)) and isinstance(r["output_length"], int)
        sessions.add(r.get("session_id") or f"generated-{i}")
    return len(sessions)


def test_mooncake_timed_jsonl(rows_path, tmp_path):
    out = tmp_path / "trace.jsonl"
    summary = export(rows_path.parent, "mooncake", out, block_size=512)
    src = pl.read_parquet(rows_path)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["requests"] == len(lines) == src.height and summary["hash_ids_replaced"] == 1
    ts = [r["timestamp"] for r in lines]
    assert all(isinstance(t, int) for t in ts) and ts[0] == 0 and ts == sorted(ts)
    np.testing.assert_array_equal(ts, np.round((src["arrival_s"].to_numpy() - src["arrival_s"][0]) * 1000).astype(int))
    assert all(r["input_length"] >= 1 and r["output_length"] >= 1 for r in lines)
    assert set(lines[0]) == {"timestamp", "input_length", "output_length", "hash_ids"}  # no session_id
    known = src[HASH_IDS].to_list()
    kept = [(k, r["hash_ids"]) for k, r in zip(known, lines) if k is not None and len(k) == len(r["hash_ids"])
            and k != known[14]]
    mapping = {}
    for k, got in kept:  # kept up to a one-to-one renumbering: equal ids stay equal
        for a, b in zip(k, got):
            assert mapping.setdefault(a, b) == b
    assert len(set(mapping.values())) == len(mapping)
    assert lines[21]["hash_ids"][0] == lines[7]["hash_ids"][0]
    all_ids = [h for r in lines for h in r["hash_ids"]]
    assert sorted(set(all_ids)) == list(range(len(set(all_ids))))  # dense from 0
    fresh = [h for r, k in zip(lines, known) if k is None or k == known[14] for h in r["hash_ids"]]
    assert len(fresh) == len(set(fresh)) and not set(fresh) & set(mapping.values())
    # each loader, as its source reads the file
    g = guidellm_mooncake_rows(out, hash_id_block_size=512)
    np.testing.assert_allclose([r["relative_timestamp"] * 0.001 for r in g],
                               src["arrival_s"].to_numpy() - src["arrival_s"][0], atol=5e-4)
    assert vllm_timed_trace_prompt_lens(out, len(lines), chunk_size=512) == [r["input_length"] for r in lines]
    short = vllm_timed_trace_prompt_lens(out, len(lines))  # vLLM's default chunk size 16
    assert sum(short) < sum(r["input_length"] for r in lines) / 10
    assert len(vllm_timed_trace_prompt_lens(out, 1000)) == len(lines) and aiperf_conversations(out) == len(lines)
    meta = json.loads((tmp_path / "trace.jsonl.meta.json").read_text())
    assert meta["timestamp_unit"] == "ms" and meta["block_size"] == 512 and meta["source_hash_ids_replaced"] == 1
    assert meta["source"]["source"] == "synthetic.csv" and meta["clamped_to_one"]["input_length"] == 1
    assert meta["scaling"]["shift_s"] == pytest.approx(src["arrival_s"][0])
    c = {tool: entry["command"] for tool, entry in meta["consumers"].items()}
    assert {e["release"] for e in meta["consumers"].values()} == {"vllm 0.34.0", "sglang 0.5.23", "aiperf 0.13.0",
                                                                   "guidellm 0.8.1"}
    assert "--timed-trace-chunk-hash-size 512" in c["vllm"] and f"--num-prompts {len(lines)}" in c["vllm"]
    assert f"--num-prompts {len(lines)}" in c["sglang"] and "--isl-block-size 512" in c["aiperf"]
    assert c["guidellm"].startswith("guidellm run ") and '"hash_id_block_size":512' in c["guidellm"]
    assert '"time_scale":0.001' in c["guidellm"] and '"source":{"kind":"json_file","path":"trace.jsonl"}' in c["guidellm"]


def test_mooncake_block_size_16(rows_path, tmp_path):
    """At B = 16 the source's 512-token lists no longer fit and every row gets ids for 16-token blocks."""
    out = tmp_path / "b16.jsonl"
    summary = export(rows_path, "mooncake", out, block_size=16)
    src = pl.read_parquet(rows_path)
    need = np.ceil(np.maximum(src["input_tokens"].to_numpy(), 1) / 16)
    assert summary["hash_ids_replaced"] == sum(1 for k, b in zip(src[HASH_IDS].to_list(), need)
                                               if k is not None and len(k) != b)
    guidellm_mooncake_rows(out, hash_id_block_size=16)
    with pytest.raises(AssertionError):
        guidellm_mooncake_rows(out)  # guidellm's default 512 refuses it: the sidecar passes 16
    with pytest.raises(ServetraceError, match="block-size"):
        export(rows_path, "mooncake", tmp_path / "b0.jsonl", block_size=0)


def vllm_burstgpt_dataset(path, num_requests: int, seed: int = 0) -> list[tuple[int, int]]:
    """vLLM's BurstGPTDataset (vllm-project/vllm vllm/benchmarks/datasets.py), step for step: pandas
    read_csv, Model == "GPT-4" and Response tokens > 0 by name, sample num_requests rows (with
    replacement when fewer), lengths by position 2 and 3."""
    df = pd.read_csv(path)
    gpt4_df = df[df["Model"] == "GPT-4"]
    gpt4_df = gpt4_df[gpt4_df["Response tokens"] > 0]
    replace = num_requests > len(gpt4_df)
    data = gpt4_df.sample(n=num_requests, random_state=seed, replace=replace).values.tolist()
    return [(int(data[i][2]), int(data[i][3])) for i in range(num_requests)]


def aiperf_burstgpt_rows(path) -> list[tuple[float, int, int]]:
    """AIPerf's BurstGPTTraceDatasetLoader (ai-dynamo/aiperf src/aiperf/dataset/loader/burst_gpt.py):
    csv.DictReader, Timestamp (s -> ms), Request tokens, Response tokens by name, every row kept."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert {"Timestamp", "Request tokens", "Response tokens"} <= set(reader.fieldnames)
        return [(float(r["Timestamp"]) * 1000.0, int(r["Request tokens"]), int(r["Response tokens"])) for r in reader]


def test_burstgpt_v1_csv(rows_path, tmp_path):
    out = tmp_path / "burst.csv"
    export(rows_path, "burstgpt", out)
    src = pl.read_parquet(rows_path)
    frame = pl.read_csv(out)
    assert frame.columns == ["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"]
    assert frame.height == src.height
    ok = src.filter(~pl.col("failed") & (pl.col("output_tokens") > 0))
    expected = sorted(zip(ok["input_tokens"].to_list(), ok["output_tokens"].to_list()))
    assert sorted(vllm_burstgpt_dataset(out, ok.height)) == expected  # exactly the successful rows
    assert set(vllm_burstgpt_dataset(out, 3 * ok.height, seed=7)) <= set(expected)  # oversampled
    assert (frame["Total tokens"] == frame["Request tokens"] + frame["Response tokens"]).all()
    assert set(frame["Log Type"]) == {"API log", "Conversation log"}
    assert frame["Timestamp"].dtype == pl.Int64 and frame["Timestamp"].is_sorted()
    # AIPerf 0.13.0 turns Response tokens into max_tokens >= 1: it reads the file without the failed rows
    companion = tmp_path / "burst_without_fails.csv"
    aiperf = aiperf_burstgpt_rows(companion)
    assert len(aiperf) == ok.height and all(a[2] >= 1 for a in aiperf)
    assert any(a[2] < 1 for a in aiperf_burstgpt_rows(out))  # the full file holds rows AIPerf refuses
    np.testing.assert_array_equal([a[0] for a in aiperf],
                                  np.floor(ok["arrival_s"].to_numpy() - src["arrival_s"][0]) * 1000.0)
    meta = json.loads((tmp_path / "burst.csv.meta.json").read_text())
    t = ok["arrival_s"].to_numpy()
    cv = np.diff(t).std() / np.diff(t).mean()
    arr = meta["vllm_arrivals"]
    assert arr["num_prompts"] == ok.height == meta["rows_vllm_keeps"]
    assert arr["request_rate"] == pytest.approx(ok.height / (t[-1] - t[0]))
    assert arr["burstiness"] == pytest.approx(1 / cv**2)
    assert f"--num-prompts {ok.height} --request-rate" in meta["consumers"]["vllm"]["command"] and "--burstiness" in meta["consumers"]["vllm"]["command"]
    assert meta["zero_request_tokens"] == int((src["input_tokens"] == 0).sum()) == 1
    assert meta["aiperf_file"] == {"name": companion.name, "requests": ok.height}
    assert f"--input-file {companion.name} --custom-dataset-type burst_gpt_trace" in meta["consumers"]["aiperf"]["command"]


def vidur_trace_replay(path, max_tokens=4096, time_scale_factor=1.0, prefill_scale_factor=1.0,
                       decode_scale_factor=1.0) -> pd.DataFrame:
    """Vidur's TraceReplayRequestGenerator (microsoft/vidur
    vidur/request_generator/trace_replay_request_generator.py, main), step for step."""
    df = pd.read_csv(path)
    df["num_prefill_tokens"] = df["num_prefill_tokens"] * prefill_scale_factor
    df["num_decode_tokens"] = df["num_decode_tokens"] * decode_scale_factor
    df["num_prefill_tokens"] = df["num_prefill_tokens"].astype(int)
    df["num_decode_tokens"] = df["num_decode_tokens"].astype(int)
    df["num_prefill_tokens"] = df["num_prefill_tokens"].clip(lower=1)
    df["num_decode_tokens"] = df["num_decode_tokens"].clip(lower=1)
    diff = (df["num_prefill_tokens"] + df["num_decode_tokens"] - max_tokens).clip(lower=0)
    df["num_prefill_tokens"] = df["num_prefill_tokens"] - diff
    assert all(df["num_prefill_tokens"] + df["num_decode_tokens"] <= max_tokens)
    df["arrived_at"] = df["arrived_at"] * time_scale_factor
    return df


def test_vidur_csv(rows_path, tmp_path):
    out = tmp_path / "vidur.csv"
    export(rows_path, "vidur", out)
    src = pl.read_parquet(rows_path)
    frame = pl.read_csv(out)
    assert frame.columns == ["arrived_at", "num_prefill_tokens", "num_decode_tokens"]
    meta = json.loads((tmp_path / "vidur.csv.meta.json").read_text())
    inp, outp = np.maximum(src["input_tokens"].to_numpy(), 1), np.maximum(src["output_tokens"].to_numpy(), 1)
    assert meta["max_total_tokens"] == int((inp + outp).max())
    assert meta["rows_over_default_max_tokens"] == int((inp + outp > 4096).sum()) > 0
    assert f"--trace_request_generator_config_max_tokens {meta['max_total_tokens']}" in meta["consumers"]["vidur"]["command"]
    vidur = vidur_trace_replay(out, max_tokens=meta["max_total_tokens"])  # the sidecar's max_tokens: nothing cut
    np.testing.assert_allclose(vidur["arrived_at"], src["arrival_s"] - src["arrival_s"][0], atol=1e-6)
    np.testing.assert_array_equal(vidur["num_prefill_tokens"], inp)
    np.testing.assert_array_equal(vidur["num_decode_tokens"], outp)
    cut = vidur_trace_replay(out)  # Vidur's default 4096 lowers the prefill of the long rows
    assert (cut["num_prefill_tokens"] < inp).sum() == meta["rows_over_default_max_tokens"]
    slow = vidur_trace_replay(out, max_tokens=meta["max_total_tokens"], time_scale_factor=2.0)
    np.testing.assert_allclose(slow["arrived_at"], 2 * vidur["arrived_at"])  # 2 = twice as slow


def test_exports_leave_nothing_half_written(rows_path, tmp_path):
    out = tmp_path / "x" / "trace.jsonl"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ServetraceError, match="needs request rows"):
        export(tmp_path / "empty", "mooncake", out)
    with pytest.raises(ServetraceError, match="no such file"):
        export(tmp_path / "nowhere", "mooncake", out)
    assert not out.exists()
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(ServetraceError, match="not a readable Parquet"):
        export(bad, "vidur", tmp_path / "v.csv")
    assert not (tmp_path / "v.csv").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(ServetraceError, match="--to 'parquet'"):
        export(rows_path, "parquet", tmp_path / "p")


def test_dense_hash_ids_compact_and_sparse():
    from servetrace.exports.mooncake import _dense_ids

    compact = pl.Series([[50, 90], None, [90, 70], [5], None], dtype=pl.List(pl.Int64))
    assert _dense_ids(compact).to_list() == [[0, 1], None, [1, 2], [3], None]
    sparse = pl.Series([[2**62, 90], None, [90, 2**40 + 7], [2**62]], dtype=pl.List(pl.Int64))  # 64-bit block hashes
    assert _dense_ids(sparse).to_list() == [[0, 1], None, [1, 2], [0]]


def test_sidecars_of_exports_sharing_a_stem(rows_path, tmp_path):
    for to, name in (("mooncake", "out.jsonl"), ("burstgpt", "out.csv"), ("vidur", "out.vidur.csv")):
        export(rows_path, to, tmp_path / name)
    formats = {p.name: json.loads(p.read_text())["format"] for p in tmp_path.glob("*.meta.json")}
    assert formats == {"out.jsonl.meta.json": "mooncake timed JSONL", "out.csv.meta.json": "BurstGPT v1 CSV",
                       "out.vidur.csv.meta.json": "Vidur trace CSV"}


def test_mooncake_export_leaves_no_shared_prefix_longer_than_its_input(tmp_path):
    """AIPerf 0.13's synthesizer takes a row's leading ids that appear twice or more in the file
    as its shared prefix (len x block size tokens) and refuses a row whose input is shorter: the
    public Mooncake trace's repeated prompts end in a shared partial block. The export gives such a
    row's partial last block an id of its own (a cache holds full blocks only) and leaves every
    other id as it was."""
    from collections import Counter

    from conftest import shared_file
    from servetrace.ingest import ingest_trace

    ingest_trace(shared_file("mooncake", "synthetic_trace.jsonl"), tmp_path)
    export(tmp_path / "requests.parquet", "mooncake", tmp_path / "out.jsonl", block_size=512)
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    side = json.loads((tmp_path / "out.jsonl.meta.json").read_text())

    def too_long(rows):  # AIPerf's rule (aiperf/dataset/synthesis/synthesizer.py), written out
        count = Counter(h for r in rows for h in r["hash_ids"])
        out = []
        for r in rows:
            lead = next((i for i, h in enumerate(r["hash_ids"]) if count[h] < 2), len(r["hash_ids"]))
            out.append(lead * 512 > r["input_length"])
        return np.array(out)

    assert not too_long(rows).any()
    source = pl.read_parquet(tmp_path / "requests.parquet")["hash_ids"].to_list()
    plain = [{"hash_ids": h, "input_length": r["input_length"]} for h, r in zip(source, rows)]
    refused = too_long(plain)  # the source's own ids, unchanged (the export renumbers them densely)
    assert side["partial_last_blocks_made_own"] == refused.sum() > 0
    dense: dict = {}
    for i, (h, r) in enumerate(zip(source, rows)):  # every other id: the source's, renumbered densely
        want = [dense.setdefault(x, len(dense)) for x in h]
        assert r["hash_ids"][:-1] == want[:-1] and (refused[i] or r["hash_ids"][-1] == want[-1])
    own = Counter(h for r in rows for h in r["hash_ids"])
    assert all(own[rows[i]["hash_ids"][-1]] == 1 for i in np.flatnonzero(refused))
