"""Ingest: every format onto the canonical table, exact row accounting, rejects with reasons."""

from __future__ import annotations

import gzip
import json

import numpy as np
import polars as pl
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from conftest import FIXTURES, run_cli, shared_file
from servetrace.errors import ServetraceError
from servetrace.ingest import ingest_trace
from servetrace.ingest.options import ingest_settings
from servetrace.io import parquet_metadata
from servetrace.schema import CANONICAL, HASH_IDS
from servetrace.settings import IngestSettings

FIX = FIXTURES / "ingest"


def ingest(path, out, **kw):
    settings = ingest_settings(kw.pop("fmt", "auto"), kw.pop("maps", []), kw.pop("time_unit", "auto"))
    summary = ingest_trace(path, out, settings)
    requests = pl.read_parquet(out / "requests.parquet")
    rejects = pl.read_parquet(out / "rejects.parquet")
    assert summary["rows_read"] == summary["rows_kept"] + summary["rows_rejected"]
    assert summary["rows_kept"] == requests.height
    assert summary["rows_rejected"] == rejects.height
    return summary, requests, rejects


def assert_canonical(path):
    schema = pq.read_schema(path)
    for field in CANONICAL:
        assert schema.field(field.name).type == field.type, field.name
    assert schema.names[: len(CANONICAL)] == CANONICAL.names


def test_burstgpt_v1(tmp_path):
    s, req, rej = ingest(FIX / "burstgpt_v1.csv", tmp_path)
    assert s["format"] == "burstgpt-v1" and s["rows_read"] == 5 and rej.height == 0
    assert_canonical(tmp_path / "requests.parquet")
    assert req["arrival_s"].to_list() == [5.0, 45.0, 45.0, 118.0, 185.0]
    assert req["failed"].to_list() == [False, False, True, False, False]
    assert req["service"].to_list() == ["conversation", "conversation", "api", "conversation", "api"]
    assert req["model"].to_list()[:3] == ["ChatGPT", "ChatGPT", "GPT-4"]
    assert req["input_tokens"].to_list() == [472, 1087, 417, 417, 1360]


def test_burstgpt_v3_origin_sessions_latency(tmp_path):
    s, req, _ = ingest(FIX / "burstgpt_v3.csv", tmp_path)
    assert s["format"] == "burstgpt-v3"
    # 19,440,110 s is 110 s after the local midnight of source day 225.
    assert req["arrival_s"].to_list() == [110.0, 161.5, 192.0, 254.0]
    assert s["origin_shift_s"] == 225 * 86400
    assert req["session_id"].to_list() == ["s-1", "s-2", None, "s-1"]
    assert req["latency_s"].to_list() == [43.0, 2.0, 8.0, 3.0]
    assert req["failed"].sum() == 1


def test_azure_2023_seven_decimals(tmp_path):
    s, req, _ = ingest(FIX / "azure2023.csv", tmp_path)
    assert s["format"] == "azure"
    expected = 18 * 3600 + 15 * 60 + np.array([46.68059, 50.995169, 51.222467])
    np.testing.assert_allclose(req["arrival_s"].to_numpy(), expected, atol=1e-6)
    assert "2023-11-16T00:00:00" in parquet_metadata(tmp_path / "requests.parquet")["servetrace.origin"]


def test_azure_2024_zones_are_honoured(tmp_path):
    _, req, _ = ingest(FIX / "azure2024.csv", tmp_path)
    # 01:00:00+01:00 is midnight UTC: it sorts before the others.
    np.testing.assert_allclose(req["arrival_s"].to_numpy(), [0.0, 0.00993, 1.5], atol=1e-6)
    assert req["input_tokens"].to_list() == [300, 1000, 2000]


def test_azure_multimodal_gzip(tmp_path):
    s, req, _ = ingest(FIX / "azure_mm2025.csv.gz", tmp_path)
    assert s["format"] == "azure-multimodal" and s["compression"] == "gzip"
    assert req["image_count"].to_list() == [1, 3]
    np.testing.assert_allclose(req["arrival_s"].to_numpy(), [43200.269, 43201.0])


def test_mooncake_ms_and_hash_ids(tmp_path):
    s, req, _ = ingest(FIX / "mooncake.jsonl", tmp_path)
    assert s["format"] == "mooncake"
    assert req["arrival_s"].to_list() == [0.0, 3.0, 3.0, 6.0]
    assert req[HASH_IDS].to_list()[0] == [0, 1, 2]


def test_bailian_sessions_from_parent_links(tmp_path):
    s, req, _ = ingest(FIX / "bailian.jsonl", tmp_path)
    assert s["format"] == "bailian"
    assert req["session_id"].to_list() == ["1", "2", "1", "1"]
    assert req["service"].to_list() == ["text", "text", "text", "image"]


def test_generic_with_map_and_ms(tmp_path):
    maps = ["ts_ms=arrival_s", "user=client_id", "mdl=model", "prompt=input_tokens", "completion=output_tokens"]
    s, req, _ = ingest(FIX / "generic.csv", tmp_path, fmt="generic", maps=maps, time_unit="ms")
    np.testing.assert_allclose(req["arrival_s"].to_numpy() % 86400, np.array([0.0, 0.5, 1.25]) + 1700000000 % 86400)
    assert req["client_id"].to_list() == ["alice", "bob", "alice"]
    assert req["reason_tokens"].to_list() == [5, None, 7]  # found by its alias
    assert s["time_unit"] == "ms"


def test_generic_time_unit_guessed(tmp_path):
    maps = ["ts_ms=arrival_s", "prompt=input_tokens", "completion=output_tokens"]
    s, _, _ = ingest(FIX / "generic.csv", tmp_path, fmt="generic", maps=maps)
    assert s["time_unit"] == "ms"


def test_generic_parquet_and_zstd(tmp_path):
    import zstandard

    df = pl.DataFrame({"timestamp": [3.0, 1.0, 2.0], "client_id": ["a", "b", "a"],
                       "input_tokens": [1, 2, 3], "output_tokens": [4, 5, 6]})
    df.write_parquet(tmp_path / "g.parquet")
    s, req, _ = ingest(tmp_path / "g.parquet", tmp_path / "p")
    assert req["arrival_s"].to_list() == [1.0, 2.0, 3.0] and s["was_sorted"] is False
    raw = (FIX / "burstgpt_v1.csv").read_bytes()
    (tmp_path / "b.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    s, req, _ = ingest(tmp_path / "b.csv.zst", tmp_path / "z")
    assert s["compression"] == "zstd" and req.height == 5


def test_row_level_rejects_keep_the_accounting(tmp_path):
    s, req, rej = ingest(FIX / "rows_bad.csv", tmp_path)
    assert s["rows_read"] == 10 and s["rows_kept"] == 2 and s["rows_rejected"] == 8
    reasons = dict(zip(rej["line"].to_list(), rej["reason"].to_list()))
    assert reasons[3] == "non-numeric input_tokens"
    assert reasons[4] == "negative input_tokens"
    assert reasons[5] == "missing timestamp"
    assert reasons[6] == "non-integer input_tokens"
    assert reasons[7] == "missing output_tokens"  # a line with too few fields
    assert reasons[8] == "repeated header line"
    assert reasons[9] == "non-finite input_tokens"
    assert reasons[10].startswith("unreadable record: too many columns")
    assert s["was_sorted"] is False
    assert req["arrival_s"].to_list() == [4.0, 5.0]


def test_bom_crlf_quotes_and_trailing_blank_lines(tmp_path):
    s, req, rej = ingest(FIX / "bom_crlf.csv", tmp_path)
    assert s["rows_read"] == 2 and rej.height == 0
    assert req["model"].to_list() == ["ChatGPT", "GPT-4"]
    assert req["service"].to_list() == ["conversation", "api"]


def test_stable_sort_keeps_file_order_for_ties(tmp_path):
    lines = ["Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"]
    lines += [f"{t},ChatGPT,{i + 1},1,{i + 2},API log" for i, t in enumerate([3, 1, 3, 1, 2, 3])]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    _, req, _ = ingest(tmp_path / "t.csv", tmp_path / "o")
    assert req["input_tokens"].to_list() == [2, 4, 5, 1, 3, 6]


def test_metadata_and_cache(tmp_path):
    s1, _, _ = ingest(FIX / "burstgpt_v1.csv", tmp_path)
    meta = parquet_metadata(tmp_path / "requests.parquet")
    assert meta["servetrace.format"] == "burstgpt-v1"
    assert meta["servetrace.rows_read"] == "5" and meta["servetrace.rows_rejected"] == "0"
    assert meta["servetrace.sha256"] == s1["sha256"]
    s2 = ingest_trace(FIX / "burstgpt_v1.csv", tmp_path)
    assert s2["cached"] is True and s2["rows_kept"] == 5
    s3 = ingest_trace(FIX / "burstgpt_v1.csv", tmp_path, IngestSettings(format="burstgpt"))
    assert s3["cached"] is False  # a changed setting is re-ingested


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"\n\n", "no records"),
        (b"Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n", "no data rows"),
        (b"1,2,3\n4,5,6\n", "no header line"),
        (b"a;b;c\n1;2;3\n", "cannot find column"),
        (b"\x00\x01\x02binary\x00", "binary content"),
        (b'{"a": 1}\n', "cannot find column"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "cannot decompress"),
    ],
)
def test_unusable_files_fail_with_one_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(ServetraceError, match=message):
        ingest_trace(path, tmp_path / "out")
    proc = run_cli("ingest", path, "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert str(path) in proc.stderr


def test_truncated_gzip_fails_cleanly(tmp_path):
    data = gzip.compress((FIX / "burstgpt_v1.csv").read_bytes() * 2000)
    path = tmp_path / "t.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    proc = run_cli("ingest", path, "--out", tmp_path / "out")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_wrong_declared_format(tmp_path):
    with pytest.raises(ServetraceError, match="not a azure trace: missing column"):
        ingest_trace(FIX / "burstgpt_v1.csv", tmp_path, IngestSettings(format="azure"))


def test_cli_json_summary(tmp_path):
    proc = run_cli("ingest", FIX / "burstgpt_v1.csv", "--out", tmp_path, "--json", check=True)
    summary = json.loads(proc.stdout)
    assert (summary["rows_read"], summary["rows_kept"], summary["rows_rejected"]) == (5, 5, 0)


# Real samples from ../shared/data.

def test_real_burstgpt_1_head(tmp_path):
    s, req, _ = ingest(shared_file("burstgpt", "BurstGPT_1_head400.csv"), tmp_path)
    src = pacsv.read_csv(shared_file("burstgpt", "BurstGPT_1_head400.csv")).to_pandas()
    assert s["rows_read"] == 400 == s["rows_kept"]
    assert int(req["failed"].sum()) == int((src["Response tokens"] == 0).sum()) == 17
    assert req["input_tokens"].sum() == src["Request tokens"].sum()


def test_real_burstgpt_3_head(tmp_path):
    s, req, _ = ingest(shared_file("burstgpt", "BurstGPT_3_head400.csv"), tmp_path)
    assert s["format"] == "burstgpt-v3" and s["rows_kept"] == 400
    assert req["session_id"].n_unique() - (1 if req["session_id"].null_count() else 0) >= 100
    assert 0 <= req["arrival_s"].min() < 86400


def test_real_azure_2023_conv(tmp_path):
    s, req, _ = ingest(shared_file("azure2023", "AzureLLMInferenceTrace_conv.csv"), tmp_path)
    src = pacsv.read_csv(shared_file("azure2023", "AzureLLMInferenceTrace_conv.csv"))
    assert s["rows_kept"] == src.num_rows == 19366
    assert req["input_tokens"].sum() == src["ContextTokens"].to_numpy().sum()
    span = req["arrival_s"].max() - req["arrival_s"].min()
    assert 3000 < span <= 3600


def test_generic_without_flag_counts_zero_output_as_failed(tmp_path):
    (tmp_path / "g.csv").write_text("timestamp,input_tokens,output_tokens\n1,5,0\n2,5,3\n")
    _, req, _ = ingest(tmp_path / "g.csv", tmp_path / "o")
    assert req["failed"].to_list() == [True, False]


def test_a_long_field_within_the_line_bound_is_refused_by_length(tmp_path):
    """Lines up to the reader's bound are read; a text field over 4 KiB rejects its row."""
    (tmp_path / "t.csv").write_text(
        "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        f"5,{'x' * 100_000},1,2,3,API log\n6,GPT-4,1,2,3,API log\n"
    )
    s, _, rej = ingest(tmp_path / "t.csv", tmp_path / "o")
    assert s["rows_kept"] == 1 and rej["reason"].to_list() == ["model longer than 4096 bytes"]


def test_origin_moves_when_the_first_rows_are_not_on_the_earliest_day(tmp_path):
    """The stream shifts by the day of its first rows; an earlier day later in the file moves the
    origin, exactly (the values equal a direct subtraction of the earliest day's midnight)."""
    ts = [1700200000.123, 1700200001.5, 1700000000.25, 1700200001.5]
    rows = [f"{t!r},c{i},m,{10 + i},{i}" for i, t in enumerate(ts)]
    (tmp_path / "t.csv").write_text("timestamp,client_id,model,input_tokens,output_tokens\n" + "\n".join(rows) + "\n")
    s, req, _ = ingest(tmp_path / "t.csv", tmp_path / "o")
    day0 = np.floor(min(ts) / 86400) * 86400
    assert s["origin_shift_s"] == day0 and s["was_sorted"] is False
    expected = sorted(t - day0 for t in ts)
    assert req["arrival_s"].to_list() == expected
    assert req["client_id"].to_list() == ["c2", "c0", "c1", "c3"]


@pytest.mark.parametrize("swap", [False, True])
def test_batches_keep_numbering_order_and_accounting(tmp_path, monkeypatch, swap):
    """Many small stream batches: refused records in several batches get their own source lines,
    arrivals going backwards across a batch boundary are seen, and rows are sorted stably."""
    import servetrace.ingest.stream as stream

    monkeypatch.setattr(stream, "READ_ROWS", 100)
    rng = np.random.default_rng(3)
    n = 1000
    t = np.sort(rng.integers(0, 500, n)).astype(float)
    if swap:
        t[[250, 730]] = t[[730, 250]]  # one pair out of order, across batches
    tokens = rng.integers(1, 100, n).astype(str).astype(object)
    bad = [17, 333, 334, 998]
    tokens[bad] = "x"
    lines = [f"{a},u{i % 7},m,{k},1" for i, (a, k) in enumerate(zip(t, tokens))]
    (tmp_path / "t.csv").write_text("timestamp,client_id,model,input_tokens,output_tokens\n" + "\n".join(lines) + "\n")
    s, req, rej = ingest(tmp_path / "t.csv", tmp_path / "o")
    assert (s["rows_read"], s["rows_kept"], s["rows_rejected"], s["was_sorted"]) == (n, n - 4, 4, not swap)
    assert rej["line"].to_list() == [i + 2 for i in bad]  # header is line 1
    assert set(rej["reason"]) == {"non-numeric input_tokens"}
    keep = np.setdiff1d(np.arange(n), bad)
    order = keep[np.argsort(t[keep], kind="stable")]
    assert req["arrival_s"].to_list() == t[order].tolist()
    assert req["input_tokens"].to_list() == tokens[order].astype(int).tolist()
    assert pq.ParquetFile(tmp_path / "o" / "requests.parquet").metadata.num_rows == n - 4
