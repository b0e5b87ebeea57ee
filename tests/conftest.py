"""Shared test fixtures: where the real public samples are, and how to run the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
FIXTURES = ROOT / "tests" / "fixtures"


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or a skip saying it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real sample {path} is absent (../shared is not beside the repo)")
    return path


def run_cli(*args: str, check: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m servetrace ARGS` as a user would; returns the completed process."""
    env = dict(os.environ)
    env.pop("SERVETRACE_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "servetrace", *map(str, args)],
        capture_output=True, text=True, cwd=cwd or ROOT, env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"servetrace {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


@pytest.fixture(autouse=True, scope="module")
def _spark_stopped_after_its_module():
    """A module that ran local Spark stops its session and its JVM when it ends, so the next
    module starts on an empty driver heap, as a `servetrace --engine spark` process does (pyspark
    otherwise keeps one JVM for the whole run, with what earlier modules left in its heap)."""
    yield
    if "pyspark" not in sys.modules:
        return
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession() or SparkSession._instantiatedSession
    if session is not None:
        session.stop()
    gateway = SparkContext._gateway
    if gateway is not None:  # the JVM ends when its stdin closes (pyspark's launch_gateway)
        proc = getattr(gateway, "proc", None)
        gateway.shutdown()
        if proc is not None:
            proc.stdin.close()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        SparkContext._gateway = SparkContext._jvm = None
