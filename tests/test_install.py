"""`pip install .` (not editable) into a fresh environment runs from any directory: the SQL (and
the page templates) ship as package data, nothing is read from the repository."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile

import pytest

from conftest import ROOT

SHIPPED = ("pipeline", "sql", "reports", "pyproject.toml", "README.md")


def _run(*cmd, cwd=None, env=None):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=env)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


@pytest.mark.slow
def test_pip_install_dot_runs_from_another_directory(tmp_path):
    # A copy of what the wheel is built from, so the build leaves nothing in the repository.
    src = tmp_path / "src"
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif (ROOT / name).exists():
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", wheels, src)
    wheel = next(wheels.glob("servetrace-*.whl"))
    with zipfile.ZipFile(wheel) as zf:  # every package folder is listed in pyproject.toml
        shipped = set(zf.namelist())
    for init in (ROOT / "pipeline").rglob("__init__.py"):
        assert f"servetrace/{init.relative_to(ROOT / 'pipeline').as_posix()}" in shipped, init
    # A fresh environment: the dependencies are the test environment's (a .pth adds its
    # site-packages; .pth files inside it, such as the editable install's, are not read), the
    # package itself is only the wheel.
    fresh = tmp_path / "fresh"
    venv.create(fresh, with_pip=False)
    lib = next(fresh.glob("lib/python*/site-packages"))
    (lib / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python = fresh / "bin" / "python"
    _run(python, "-m", "pip", "--version")  # pip comes from the dependencies' site-packages
    _run(python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel)
    where = tmp_path / "elsewhere"
    where.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SERVETRACE_DEBUG")}
    probe = _run(python, "-c", "import servetrace, servetrace.resources as r; print(servetrace.__file__); "
                 "print(r.SQL_DIR); print(r.resource_dir('reports'))", cwd=where, env=env).stdout.split()
    assert all(str(lib) in p for p in probe), probe  # the installed copy, not the repository's
    trace = ROOT / "data" / "samples" / "burstgpt_sample.csv"
    done = _run(fresh / "bin" / "servetrace", "characterize", trace, "--out", "out", "--quiet", "--json",
                cwd=where, env=env)
    summary = json.loads(done.stdout)
    assert summary["rows_kept"] == summary["rows_read"] > 0
    for name in ("report.html", "findings.json", "bundle.json"):
        assert (where / "out" / name).is_file(), name
    assert "<h1>Workload characterization of" in (where / "out" / "report.html").read_text()  # the shipped templates
    findings = json.loads((where / "out" / "findings.json").read_text())
    assert findings["arrivals"]["rate_rps"] > 0 and findings["trace"]["rows_kept"] == summary["rows_kept"]
