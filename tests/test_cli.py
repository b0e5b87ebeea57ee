"""The CLI is documented: every command has help text and appears in the README."""

from __future__ import annotations

import re

import typer.main

from conftest import ROOT, run_cli
from servetrace.cli import app


def _commands():
    group = typer.main.get_command(app)
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            for sub, subcmd in cmd.commands.items():
                yield f"{name} {sub}", subcmd
        else:
            yield name, cmd


def test_every_command_has_help_text():
    for name, cmd in _commands():
        assert (cmd.help or "").strip(), f"servetrace {name} has no help text"
        for param in cmd.params:
            if param.param_type_name == "option" and param.name != "help":
                assert (param.help or "").strip(), f"servetrace {name} {param.opts[0]} has no help text"


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name, _ in _commands():
        assert re.search(rf"servetrace {re.escape(name)}\b", readme), f"README does not show `servetrace {name}`"


def test_python_m_servetrace_and_help():
    proc = run_cli("--help", check=True)
    for name, _ in _commands():
        assert name.split()[0] in proc.stdout


def test_malloc_is_held_to_two_arenas_unless_the_caller_says_otherwise():
    """The command's entry asks glibc's mallopt for two arenas (M_ARENA_MAX = -8) before any thread
    starts, unless the caller set MALLOC_ARENA_MAX (which glibc read itself)."""
    probe = ("import ctypes, sys, types, threading\n"
             "calls = []\n"
             "class Libc:\n"
             "    def mallopt(self, *a): calls.append((a, threading.active_count())); return 1\n"
             "ctypes.CDLL = lambda name: Libc()\n"
             "cli = sys.modules['servetrace.cli'] = types.ModuleType('servetrace.cli')\n"
             "cli.main = lambda: print(calls)\n"
             "import servetrace.__main__ as m\n"
             "m.main()\n")

    assert _entry_probe(probe, "MALLOC_ARENA_MAX", None) == "[((-8, 2), 1)]"  # one thread: no signal watcher yet
    assert _entry_probe(probe, "MALLOC_ARENA_MAX", "4") == "[]"


def test_openblas_idle_threads_sleep_unless_the_caller_says_otherwise():
    """The command sets OPENBLAS_THREAD_TIMEOUT before numpy (and its OpenBLAS) loads, keeping a
    value the caller set: read inside the CLI's entry, where the commands start."""
    probe = ("import sys, os, types\n"  # the CLI stood in for: what it would see on entry
             "cli = sys.modules['servetrace.cli'] = types.ModuleType('servetrace.cli')\n"
             "cli.main = lambda: print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), 'numpy' in sys.modules)\n"
             "import servetrace.__main__ as m\n"
             "m.main()\n")

    assert _entry_probe(probe, "OPENBLAS_THREAD_TIMEOUT", None) == "4 False"
    assert _entry_probe(probe, "OPENBLAS_THREAD_TIMEOUT", "12") == "12 False"


def _entry_probe(probe: str, name: str, value: str | None) -> str:
    """What `probe` (the command's entry with the CLI stood in for) prints, run with the environment
    variable `name` unset (None) or set to `value`."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != name}
    if value is not None:
        env[name] = value
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.strip()
