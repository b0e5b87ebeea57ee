"""SIGKILL a run at several points: the outputs of the previous run stay whole (or are replaced
whole), no visible file is ever half-written, and the next run completes and sweeps the debris.

Each kill point is a moment observed from outside the process: a temporary output appearing
(the ingest's Parquet COPY), the stage database existing, findings.json replaced while the report
renders, the request table opened by `fit`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import ROOT
from servetrace.io import LOCK_NAME, _LEFTOVER

SAMPLE = ROOT / "data" / "samples" / "burstgpt_sample.csv"


def _lines(n: int) -> bytes:
    with open(SAMPLE, "rb") as f:
        return b"".join(f.readline() for _ in range(n + 1))


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is absent")
    tmp = tmp_path_factory.mktemp("traces")
    small, medium, big = tmp / "small.csv", tmp / "medium.csv", tmp / "big.csv"
    small.write_bytes(_lines(500))
    medium.write_bytes(_lines(5_000))
    body = SAMPLE.read_bytes()
    header, rest = body.split(b"\n", 1)
    big.write_bytes(header + b"\n" + rest * 3)  # ~120k rows: its COPY lasts long enough to be hit
    return small, medium, big


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _opened(pid: int, target: Path) -> bool:
    """Whether process `pid` has `target` open (its file descriptors: cheap enough to poll)."""
    target_s = str(target.resolve())
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == target_s for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:  # the process or the descriptor is gone
        return False


def kill_when(args: list[str], ready, timeout: float = 60.0) -> bool:
    """Run the CLI, SIGKILL it as soon as `ready(pid)` holds; True if it was killed (not finished)."""
    proc = subprocess.Popen([sys.executable, "-m", "servetrace", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if ready(proc.pid):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.0005)
    proc.wait(timeout=timeout)
    return False


def _temp(out: Path, *prefixes: str):
    return lambda pid: any(p.name.startswith(prefixes) for p in out.iterdir())


def assert_whole(out: Path, shas: set[str]) -> None:
    """Every visible output is complete and belongs to one of the runs `shas`; hidden entries are
    only the lock and a killed run's temporaries."""
    for p in out.iterdir():
        if p.name.startswith("."):
            assert p.name == LOCK_NAME or _LEFTOVER.match(p.name), p.name
        elif p.suffix == ".parquet":
            table = pq.read_table(p)  # a half Parquet file has no footer: this raises
            meta = table.schema.metadata or {}
            if b"servetrace.sha256" in meta:
                assert meta[b"servetrace.sha256"].decode() in shas, p.name
        elif p.name == "findings.json":
            assert json.loads(p.read_text())["trace"]["sha256"] in shas
        elif p.name == "bundle.json":
            from servetrace.bundle import load_bundle

            assert load_bundle(p)["source"]["sha256"] in shas
        elif p.suffix == ".html":
            assert p.read_text().rstrip().endswith("</html>"), p.name
        elif p.is_dir():
            assert p.name == "tables", p.name
            assert all(pq.read_table(t).num_rows >= 0 for t in p.iterdir())


def test_sigkill_at_each_point_leaves_whole_outputs(traces, tmp_path):
    from servetrace.characterization import characterize
    from servetrace.io import sha256_file

    small, medium, big = traces
    out = tmp_path / "out"
    characterize(small, out, quiet=True)  # the previous run's outputs
    shas = {sha256_file(small), sha256_file(medium), sha256_file(big)}
    findings = out / "findings.json"
    points = {
        "ingest: Parquet COPY under way": (big, _temp(out, ".requests.parquet.", ".rejects.parquet.")),
        "a stage: stage database open": (medium, _temp(out, ".servetrace-duckdb-")),
        "report: findings written, page rendering": (
            medium, lambda pid, before=_inode(findings): _inode(findings) != before),
    }
    killed = {}
    for name, (trace, ready) in points.items():
        killed[name] = kill_when(["characterize", trace, "--out", out, "-q"], ready)
        assert_whole(out, shas)
    pytest.importorskip("servetrace.bundle.cli_support", reason="the fit command has not landed")
    requests = out / "requests.parquet"
    killed["fitting: request table read"] = kill_when(
        ["fit", out], lambda pid: _opened(pid, requests) or _temp(out, ".bundle.json.")(pid))
    assert_whole(out, shas)
    assert all(killed.values()), f"kill points missed (the run finished first): {killed}"

    summary = characterize(medium, out, quiet=True)  # the next run completes
    assert summary["rows_read"] == 5_000
    assert_whole(out, {sha256_file(medium)})
    assert json.loads(findings.read_text())["trace"]["sha256"] == sha256_file(medium)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != LOCK_NAME], \
        "the next run swept the temporaries of the killed ones"
