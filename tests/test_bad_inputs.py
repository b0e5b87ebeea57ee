"""The bad-input corpus: every file in tests/bad_inputs/manifest.json meets its stated outcome.

error: the CLI prints one line naming the file and the problem, exits 2 (never 1, the
"internal error" exit), prints no traceback and writes no request table. ingested: rows read =
kept + rejected, exactly the counts and reject reasons of the manifest, and the two Parquet files
agree with the summary. Big cases (a 100 MB line, decompression bombs) are built in tmp_path.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import polars as pl
import pytest

from conftest import ROOT
from servetrace import cli

BAD = ROOT / "tests" / "bad_inputs"
MANIFEST = json.loads((BAD / "manifest.json").read_text(encoding="utf-8"))
CASES = MANIFEST["cases"]
HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
LINE = "5,ChatGPT,472,18,490,Conversation log\n"


def gzip_bomb(tmp: Path) -> Path:
    """1 GiB of valid CSV lines in ~1 MB: one well-compressed 1 MiB member repeated 1024 times
    (a multi-member file, whose last trailer tells nothing of the total)."""
    block = (LINE * ((1 << 20) // len(LINE))).encode()
    member = gzip.compress(block, compresslevel=9, mtime=0)
    path = tmp / "bomb.csv.gz"
    with open(path, "wb") as f:
        f.write(gzip.compress(HEADER.encode(), mtime=0))
        for _ in range(1024):
            f.write(member)
    return path


def zstd_bomb(tmp: Path) -> Path:
    import zstandard

    path = tmp / "bomb.csv.zst"
    path.write_bytes(zstandard.ZstdCompressor(level=19).compress((HEADER + LINE * 800_000).encode()))
    return path


def long_line(tmp: Path) -> Path:
    path = tmp / "long_line.csv"
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEADER + LINE)
        f.write("6," + "x" * 100_000_000 + ",100,20,120,API log\n")
        f.write("9,ChatGPT,30,0,30,Conversation log\n")
    return path


GENERATORS = {"gzip_bomb": gzip_bomb, "zstd_bomb": zstd_bomb, "long_line": long_line}


def case_path(case: dict, tmp: Path) -> Path:
    return GENERATORS[case["generated"]](tmp) if "generated" in case else BAD / case["path"]


def run_main(argv: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    """The installed entry point, in process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["servetrace", *argv])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def command(case: dict, path: Path, out: Path) -> list[str]:
    if case.get("command") == "generate":
        return ["generate", str(path), "--out", str(out / "synthetic.parquet")]
    return ["ingest", str(path), "--out", str(out), "--json"]


def test_corpus_is_complete():
    committed = {c["path"].split("/")[0] for c in CASES if "generated" not in c}
    on_disk = {p.name for p in BAD.iterdir() if p.name != "manifest.json"}
    assert committed == on_disk, "every committed bad input has a manifest entry and vice versa"
    assert len(on_disk) >= 30
    assert all(p.stat().st_size < 4096 for p in BAD.rglob("*") if p.is_file() and p.name != "manifest.json")


def _matches(reasons: dict, expected: dict) -> bool:
    """Reason counts, where an expected 'unreadable record' counts every 'unreadable record: ...'."""
    got: dict[str, int] = {}
    for reason, n in reasons.items():
        key = "unreadable record" if reason.startswith("unreadable record") else reason
        got[key] = got.get(key, 0) + n
    return got == expected


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_bad_input(case, tmp_path, capsys, monkeypatch):
    path = case_path(case, tmp_path)
    out = tmp_path / "out"
    code, stdout, stderr = run_main(command(case, path, out), capsys, monkeypatch)
    if case["outcome"] == "error":
        assert code == 2, f"exit {code}: {stderr}"
        assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
        assert case["message"] in stderr, stderr
        assert path.name in stderr or str(path) in stderr, "the message names the file"
        assert not (out / "requests.parquet").exists()
        return
    assert code == 0, stderr
    s = json.loads(stdout)
    assert s["rows_read"] == s["rows_kept"] + s["rows_rejected"]
    assert (s["rows_read"], s["rows_kept"], s["rows_rejected"]) == (
        case["rows_read"], case["rows_kept"], case["rows_rejected"])
    assert _matches(s["reject_reasons"], case["reasons"]), s["reject_reasons"]
    for key in ("format", "compression", "was_sorted"):
        if key in case:
            assert s[key] == case[key], key
    requests = pl.read_parquet(out / "requests.parquet")
    rejects = pl.read_parquet(out / "rejects.parquet")
    assert requests.height == s["rows_kept"] and rejects.height == s["rows_rejected"]
    assert requests["arrival_s"].is_sorted() and requests["arrival_s"].is_finite().all()
    assert (requests["input_tokens"] >= 0).all() and (requests["output_tokens"] >= 0).all()
    # a reject is named by its source line, and where a line holds several calls by its item too
    assert rejects.select("line", "item").n_unique() == rejects.height and (rejects["line"] >= 1).all()
    assert rejects.filter(pl.col("item").is_null())["line"].n_unique() == rejects["item"].null_count()
    assert rejects["reason"].null_count() == 0
    if rejects.height:
        assert rejects["record"].str.len_chars().max() <= 1 << 16
