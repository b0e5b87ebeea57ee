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
