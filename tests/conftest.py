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
def _spark_stopped_after_its_module(request):
    """A module that ran local Spark stops its session when it ends, so the next module's
    queries start on a fresh context (one JVM serves the whole run: cached blocks, broadcasts
    and query plans left by earlier modules otherwise take the next ones' memory)."""
    yield
    if "spark" not in request.module.__name__ or "pyspark" not in sys.modules:
        return
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession() or SparkSession._instantiatedSession
    if session is not None:
        session.stop()
