"""What an adversarial user broke through options, output paths, signals and a full disk: each
class refused with one clear line and a non-zero exit, nothing removed that servetrace did not make."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import ROOT, run_cli
from servetrace.io import LOCK_NAME

SAMPLE = ROOT / "data" / "samples" / "burstgpt_sample.csv"


def _one_line_error(proc, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    text = proc.stderr.lower()
    for w in words:
        assert w.lower() in text, proc.stderr


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    """A characterized 3,000-row cut of the sample (requests.parquet, bundle.json, findings...)."""
    tmp = tmp_path_factory.mktemp("fitted")
    with open(SAMPLE, "rb") as f:
        (tmp / "small.csv").write_bytes(b"".join(f.readline() for _ in range(3001)))
    run_cli("characterize", tmp / "small.csv", "--out", tmp / "out", "--quiet", check=True)
    return tmp / "out"


# --- Data loss 1: an export never removes what it did not make --------------------------------

def test_export_into_a_directory_of_other_files_is_refused_and_removes_nothing(fitted, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for to in ("knobs", "servegen"):
        target = mine if to == "knobs" else tmp_path
        (tmp_path / "data" / "language" / "m").mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / "language" / "m" / "own.csv").write_text("keep")
        proc = run_cli("export", fitted, "--to", to, "--out", target, "--model", "m")
        _one_line_error(proc, "did not write")
    assert (mine / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "data" / "language" / "m" / "own.csv").read_text() == "keep"


def test_export_onto_an_existing_file_keeps_the_file(fitted, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("keep me")
    _one_line_error(run_cli("export", fitted, "--to", "knobs", "--out", f), "not a directory")
    assert f.read_text() == "keep me"


def test_export_replaces_only_its_own_earlier_export(fitted, tmp_path):
    out = tmp_path / "knobs"
    run_cli("export", fitted, "--to", "knobs", "--out", out, check=True)
    run_cli("export", fitted, "--to", "knobs", "--out", out, check=True)  # its own files: replaced
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["knobs.json", "knobs.md"]
    (out / "extra.txt").write_text("user's")
    _one_line_error(run_cli("export", fitted, "--to", "knobs", "--out", out), "extra.txt")
    assert (out / "extra.txt").exists() and (out / "knobs.json").exists()


# --- Crash 3: a bad --out --------------------------------------------------------------------

def test_bad_out_paths_are_one_line_errors(fitted, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    bundle = fitted / "bundle.json"
    cases = [
        (("characterize", SAMPLE, "--out", ""), "empty"),
        (("ingest", SAMPLE, "--out", "/"), "root"),
        (("ingest", SAMPLE, "--out", a_file), "not a directory"),
        (("ingest", SAMPLE, "--out", a_file / "sub"), "not a directory"),
        (("generate", bundle, "--out", a_file / "g.parquet"), "not a directory"),
        (("generate", bundle, "--out", "/dev/null", "--format", "csv"), "not a place for outputs"),
        (("generate", bundle, "--out", "/proc/self/x.parquet"), "not a place for outputs"),
        (("generate", bundle, "--out", tmp_path), "is a directory"),
        (("export", fitted, "--to", "mooncake", "--out", tmp_path), "is a directory"),
        (("report", fitted, "--out", tmp_path), "is a directory"),
        (("fit", a_file), "not a directory"),
    ]
    for args, words in cases:
        _one_line_error(run_cli(*args), words)
    assert a_file.read_text() == "x"


def _unshare() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-r", "-m", "true"], capture_output=True).returncode == 0


def _in_mount(options: str, script: str, mnt: Path) -> subprocess.CompletedProcess:
    """Run `script` (shell, $ST is the CLI) with a fresh tmpfs mounted at `mnt` (user namespace)."""
    mnt.mkdir(exist_ok=True)
    st = f"{sys.executable} -m servetrace"
    return subprocess.run(["unshare", "-r", "-m", "sh", "-c",
                           f"mount -t tmpfs -o {options} tmpfs {mnt} && ST='{st}' && {script}"],
                          capture_output=True, text=True, cwd=ROOT)


@pytest.mark.skipif(not _unshare(), reason="needs unshare (user and mount namespaces) to mount a tmpfs")
def test_read_only_out_directory_is_one_line_error(fitted, tmp_path):
    proc = _in_mount("ro,size=1m", f"$ST export {fitted} --to knobs --out {tmp_path}/ro/k", tmp_path / "ro")
    _one_line_error(proc, "not writable")


# --- Crash 4: disk full ----------------------------------------------------------------------

@pytest.mark.skipif(not _unshare(), reason="needs unshare (user and mount namespaces) to mount a tmpfs")
@pytest.mark.parametrize("command,expected", [
    ("ingest {sample} --out {mnt}/o", "no space left on {mnt} while writing {mnt}/"),
    # generate knows its size before writing: refused up front, naming the free space and the place
    ("generate {bundle} --out {mnt}/g.parquet --rate-scale 20", "gib free in {mnt}"),
    ("export {dir} --to mooncake --out {mnt}/m.jsonl", "no space left on {mnt} while writing {mnt}/"),
    ("report {dir} --out {mnt}/r.html", "no space left on {mnt} while writing {mnt}/"),
])
def test_disk_full_names_the_device_and_file(fitted, tmp_path, command, expected):
    mnt = tmp_path / "full"
    cmd = command.format(sample=SAMPLE, bundle=fitted / "bundle.json", dir=fitted, mnt=mnt)
    proc = _in_mount("size=48k", f"$ST {cmd}", mnt)
    _one_line_error(proc, expected.format(mnt=mnt))


# --- Crash 6 (up-front part): impossible generation sizes, non-finite options; its temp file --

def test_generate_refuses_impossible_sizes_with_the_expected_count(fitted, tmp_path):
    bundle = fitted / "bundle.json"
    out = tmp_path / "g.parquet"
    for args, words in [
        (("--duration", "inf"), "finite"),
        (("--duration", "nan"), "finite"),
        (("--start", "1e300"), "--start"),
        (("--rate-scale", "1e6"), "would generate about"),
        (("--duration", "1e10", "--rate", "1000"), "would generate about 1e+13 requests"),
    ]:
        _one_line_error(run_cli("generate", bundle, "--out", out, *args), *words)
    huge = json.loads(bundle.read_text())
    huge["clients"][0]["windows"]["rate_rps"][0] = 1e300
    (tmp_path / "huge.json").write_text(json.dumps(huge))
    _one_line_error(run_cli("generate", tmp_path / "huge.json", "--out", out), "would generate about")
    assert not out.exists()


def test_killed_generate_temp_file_is_swept_by_the_next_run(fitted, tmp_path):
    out = tmp_path / "g.parquet"
    dead = tmp_path / ".g.parquet.k1ll3d00.parquet"  # what a SIGKILLed run leaves
    dead.write_bytes(b"x" * 1000)
    live = tmp_path / ".g.parquet.l1ve0000.parquet"  # a running one's: held under its flock
    live.write_bytes(b"y")
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDONLY);"
                               " fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)", live],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        run_cli("generate", fitted / "bundle.json", "--out", out, "--duration", "600", check=True)
        assert not dead.exists() and live.exists()
    finally:
        holder.kill()
        holder.wait()
    assert pq.read_table(out).num_rows > 0


# --- Crash 8 / Valid input 5: every option checked once, before any work ---------------------

@pytest.mark.parametrize("args", [
    ("characterize", "{sample}", "--out", "{out}", "--window", "100000000000000000000"),
    ("characterize", "{sample}", "--out", "{out}", "--window", "0"),
    ("fit", "{dir}", "--window", "0"),
    ("validate", "{sample}", "{sample}", "--out", "{out}", "--window", "-1"),
    ("provision", "{dir}", "--out", "{out}", "--decode", "nan"),
    ("provision", "{dir}", "--out", "{out}", "--quantile", "1.5"),
    ("provision", "{dir}", "--out", "{out}", "--batch", "0"),
    ("provision", "{dir}", "--out", "{out}", "--target", "inf"),
    ("export", "{dir}", "--to", "mooncake", "--out", "{out}.jsonl", "--block-size", str(2**64)),
    ("generate", "{bundle}", "--out", "{out}.parquet", "--seed", "-1"),
    ("characterize", "{sample}", "--out", "{out}", "--group-by", "typo"),
    ("fit", "{dir}", "--group-by", "model,typo"),
])
def test_numeric_and_vocabulary_options_are_checked_before_any_work(fitted, tmp_path, args):
    out = tmp_path / "never"
    fill = {"sample": SAMPLE, "out": out, "dir": fitted, "bundle": fitted / "bundle.json"}
    flag = next(a for a in args if a.startswith("--") and a != "--out" and a != "--to")
    proc = run_cli(*[a.format(**fill) for a in args])
    _one_line_error(proc, f"Invalid value for '{flag}'")
    assert not any(tmp_path.iterdir()), "an option error did work first"


def test_model_service_grouping_is_one_vocabulary(fitted, tmp_path):
    for command in (("characterize", SAMPLE, "--out", tmp_path / "c", "--quiet"), ("fit", fitted)):
        run_cli(*command, "--group-by", "model,service", check=True)
    assert json.loads((tmp_path / "c" / "findings.json").read_text())["settings"]["group_by"] == "model,service"


# --- Crash 7: provision --bundle -------------------------------------------------------------

def test_provision_with_a_bundle_generates_ours(fitted, tmp_path):
    proc = run_cli("provision", fitted, "--out", tmp_path / "p", "--bundle", fitted / "bundle.json", "--json",
                   check=True)
    result = json.loads(proc.stdout)
    assert set(result["capacity"]) == {"source", "ours", "naive"}
    source, ours = result["traces"]["source"]["requests"], result["traces"]["ours"]["requests"]
    assert source == 3000 and abs(ours - source) < 6 * source ** 0.5 + 0.3 * source


# --- Data loss 4: Ctrl-C -------------------------------------------------------------------

def _interrupt_at(args: list, out: Path, delay: float) -> tuple[int, str, float]:
    proc = subprocess.Popen([sys.executable, "-m", "servetrace", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err, time.monotonic() - sent


def _no_leftovers_and_unlocked(out: Path) -> None:
    if not out.exists():
        return
    debris = [p.name for p in out.rglob("*") if p.name.startswith(".") and p.name != LOCK_NAME]
    assert not debris, debris
    fd = os.open(out / LOCK_NAME, os.O_RDONLY) if (out / LOCK_NAME).exists() else None
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a dead run still held it
        os.close(fd)
    for p in out.rglob("*.parquet"):
        pq.read_table(p)  # whole, never half-written
    for p in out.glob("*.json"):
        json.loads(p.read_text())


@pytest.fixture(scope="module")
def run_lengths(fitted, tmp_path_factory) -> dict[str, float]:
    """Wall seconds of an uninterrupted characterize of the sample and fit of `fitted`: the Ctrl-C
    tests signal at shares of these, so every case lands inside the run however fast it gets."""
    tmp = tmp_path_factory.mktemp("lengths")
    shutil.copytree(fitted, tmp / "fit")
    took = {}
    for name, args in (("characterize", ("characterize", SAMPLE, "--out", tmp / "c", "--quiet")), ("fit", ("fit", tmp / "fit"))):
        start = time.monotonic()
        run_cli(*args, check=True)
        took[name] = time.monotonic() - start
    return took


@pytest.mark.parametrize("share", [0.05, 0.15, 0.3, 0.5, 0.7, 0.85])
def test_ctrl_c_during_characterize_exits_130_at_once_and_leaves_nothing(tmp_path, share, run_lengths):
    out = tmp_path / "out"
    code, err, took = _interrupt_at(["characterize", SAMPLE, "--out", out, "--quiet"], out,
                                    share * run_lengths["characterize"])
    if code == 0:
        pytest.skip("the run finished before the signal")
    assert code == 130 and err.strip().splitlines()[-1] == "servetrace: interrupted", err
    assert "Traceback" not in err
    assert took < 10
    _no_leftovers_and_unlocked(out)
    run_cli("characterize", SAMPLE, "--out", out, "--quiet", check=True)  # the next run works


@pytest.mark.parametrize("share", [0.3, 0.5, 0.7, 0.85])
def test_ctrl_c_during_the_bundle_fit_threads(fitted, tmp_path, share, run_lengths):
    out = tmp_path / "fit"
    shutil.copytree(fitted, out)
    code, err, took = _interrupt_at(["fit", out], out, share * run_lengths["fit"])
    if code == 0:
        pytest.skip("the fit finished before the signal")
    assert code == 130 and err.strip() == "servetrace: interrupted", err
    assert took < 10
    _no_leftovers_and_unlocked(out)


@pytest.mark.parametrize("maker", ["atomic_path", "atomic_dir", "scratch_dir", "temporary_dir"])
def test_the_interrupts_sweep_and_a_temporary_being_made_leave_none(tmp_path, monkeypatch, maker):
    """The interrupt's sweep (io.discard_temporaries, on the signal watcher's thread) while another
    thread makes a temporary: it is made and registered before the sweep, which removes it, or not
    at all. (A temporary made just after the sweep outlived the run: Ctrl-C at the end of `fit`
    left `.bundle.json.<random>.json`, once in ~80 interrupts.)"""
    import threading

    from servetrace import io

    monkeypatch.setattr(io, "_COMMIT", threading.Lock())  # the sweep keeps the lock it takes
    making, swept, entered, checked = (threading.Event() for _ in range(4))

    def late(make):
        def made(*args, **kwargs):
            making.set()
            swept.wait(0.5)  # the sweep comes now, unless it has to wait for this temporary
            return make(*args, **kwargs)
        return made

    monkeypatch.setattr(io.tempfile, "mkstemp", late(io.tempfile.mkstemp))
    monkeypatch.setattr(io.tempfile, "mkdtemp", late(io.tempfile.mkdtemp))
    make = {"atomic_path": lambda: io.atomic_path(tmp_path / "bundle.json", ".json"),
            "atomic_dir": lambda: io.atomic_dir(tmp_path / "tables"),
            "scratch_dir": lambda: io.scratch_dir(tmp_path / "requests.parquet"),
            "temporary_dir": lambda: io.temporary_dir(tmp_path, ".servetrace-duckdb-")}[maker]

    def write():
        with contextlib.suppress(RuntimeError), make():
            entered.set()
            checked.wait(5)
            raise RuntimeError("the process ends here")  # not committed: the sweep holds the lock

    writer = threading.Thread(target=write)
    writer.start()
    assert making.wait(5)
    sweep = threading.Thread(target=io.discard_temporaries)
    sweep.start()
    sweep.join(15)
    swept.set()
    assert entered.wait(5)
    left = sorted(p.name for p in tmp_path.iterdir())  # what an os._exit now would leave
    checked.set()
    writer.join(5)
    assert left == [], left


def test_ctrl_c_during_generate_removes_its_temp_file(fitted, tmp_path):
    out = tmp_path / "g.parquet"
    # the signal comes once the temporary file holds rows (not after a fixed delay: a fast
    # generator could finish first), while the rest of ~20 M requests is still to be written
    proc = subprocess.Popen([sys.executable, "-m", "servetrace", "generate", str(fitted / "bundle.json"),
                             "--out", str(out), "--rate-scale", "500"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if any(p.name.startswith(f".{out.name}.") and p.stat().st_size > 0 for p in tmp_path.iterdir()):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "servetrace: interrupted" in err, err
    assert [p.name for p in tmp_path.iterdir()] == []


_SIGINT_ON_IMPORT = '''
import importlib.abc, os, signal, sys

class _SigintOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["SIGINT_ON_IMPORT"]:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, _SigintOnImport())
'''


@pytest.mark.parametrize("module", ["servetrace.interrupt", "servetrace.cli", "duckdb"])
def test_ctrl_c_during_the_first_imports_is_one_line_and_exit_130(tmp_path, module):
    """Ctrl-C while the command is still importing (a sitecustomize raises SIGINT just as
    `module` is first imported: before the watcher thread exists, and after): the same one line
    and exit 130 as later, never a KeyboardInterrupt traceback."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_SIGINT_ON_IMPORT)
    env = {**os.environ, "PYTHONPATH": str(hook), "SIGINT_ON_IMPORT": module}
    env.pop("SERVETRACE_DEBUG", None)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "servetrace", "ingest", SAMPLE, "--out", out],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert (proc.returncode, proc.stderr) == (130, "servetrace: interrupted\n"), proc.stderr
    assert not out.exists() or not (out / "requests.parquet").exists()


def test_report_refuses_outputs_of_two_traces_after_a_kill(fitted, tmp_path):
    """Each output names its trace (findings.json, tables/*, requests.parquet carry the source's
    sha256); a directory where a run ended between writes (new requests, old findings; one table
    of another trace) is refused by `report`, not drawn as one trace."""
    out = tmp_path / "out"
    shutil.copytree(fitted, out)
    sha = json.loads((out / "findings.json").read_text())["trace"]["sha256"]
    tables = sorted((out / "tables").glob("*.parquet"))
    assert tables and all(pq.read_schema(p).metadata[b"servetrace.sha256"].decode() == sha for p in tables)
    assert run_cli("report", out).returncode == 0

    table = pq.read_table(tables[0])
    meta = {**table.schema.metadata, b"servetrace.sha256": b"0" * 64}
    pq.write_table(table.replace_schema_metadata(meta), tables[0])
    proc = run_cli("report", out)
    assert proc.returncode == 2 and f"tables/{tables[0].name} is from another trace" in proc.stderr, proc.stderr

    shutil.rmtree(out)
    shutil.copytree(fitted, out)
    other = tmp_path / "other.csv"
    other.write_text("arrival_s,input_tokens,output_tokens\n" + "".join(f"{i},{10 + i},3\n" for i in range(50)))
    assert run_cli("ingest", other, "--out", out).returncode == 0  # the next run, killed after its ingest
    proc = run_cli("report", out)
    assert proc.returncode == 2 and "requests.parquet is from another trace" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
