"""Shared test fixtures: where the real public samples are, and how to run the CLI."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
FIXTURES = ROOT / "tests" / "fixtures"
PACKAGE = importlib.util.find_spec("servetrace").submodule_search_locations[0] + os.sep


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


def scratch_spy(monkeypatch, module, name: str, arg: int) -> list[tuple[Path, bool, bool]]:
    """Spy on `module.name`, which is handed a scratch directory as positional argument `arg`: per
    call, that directory, whether servetrace.io held it live then (an interrupt removes it) and
    whether its name is one the next run's sweep removes after a kill (io._LEFTOVER)."""
    from servetrace import io

    seen: list[tuple[Path, bool, bool]] = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        work = Path(args[arg])
        seen.append((work, work in io._LIVE, bool(io._LEFTOVER.match(work.name))))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return seen


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


@pytest.fixture(autouse=True)
def _temporaries_made_through_io(monkeypatch):
    """The package makes its temporaries through servetrace.io, which registers them: an interrupt
    removes them and the next run sweeps a killed run's. A test fails when package code made one with
    tempfile directly (one that Ctrl-C, ending the process at once, would leave behind); a library's
    own temporaries (pyspark's gateway) are the library's."""
    made: list[str] = []

    def watched(make):
        def wrapper(*args, **kwargs):
            out = make(*args, **kwargs)
            frame = sys._getframe(1)
            while frame is not None and frame.f_code.co_filename == tempfile.__file__:  # TemporaryDirectory
                frame = frame.f_back
            file = frame.f_code.co_filename if frame is not None else ""  # the code that asked for it
            if file.startswith(PACKAGE) and not (file == PACKAGE + "io.py" and frame.f_code.co_name == "_new"):
                made.append(f"{file[len(PACKAGE):]}:{frame.f_lineno} made {out}")
            return out
        return wrapper

    for name in ("mkdtemp", "mkstemp"):
        monkeypatch.setattr(tempfile, name, watched(getattr(tempfile, name)))
    yield
    assert not made, "temporaries made outside servetrace.io: " + "; ".join(made)
