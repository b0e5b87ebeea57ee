"""How the bench calls servetrace, and whether a command exists yet."""

from __future__ import annotations

import functools
import json
import subprocess
import sys

SERVETRACE = [sys.executable, "-m", "servetrace"]


@functools.cache
def available(command: str) -> bool:
    """True when `servetrace COMMAND --help` succeeds (commands land one by one)."""
    done = subprocess.run([*SERVETRACE, command, "--help"], capture_output=True, text=True)
    return done.returncode == 0


def json_tail(text: str) -> dict:
    """The JSON document a command printed after any other output, or {}."""
    start = text.find("{")
    try:
        return json.loads(text[start:]) if start >= 0 else {}
    except json.JSONDecodeError:
        return {}
