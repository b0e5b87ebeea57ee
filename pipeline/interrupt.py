"""Ctrl-C (SIGINT) or SIGTERM ends a run at any moment: one line, exit 130 (143), no temporaries
left, the directory lock released (the process ends, and its flock with it).

The signals are blocked in every thread and taken by one watcher thread (signal.sigwait), so a
signal is acted on at once even while the main thread waits in DuckDB, Arrow, a worker pool or
an import lock, and no KeyboardInterrupt ever lands half-way through Python code.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

_SIGNALS = {signal.SIGINT: (130, "interrupted"), signal.SIGTERM: (143, "terminated")}


def install() -> None:
    """Call first in the process, before any thread starts (pyarrow's start at its import):
    threads inherit the blocked mask."""
    signal.pthread_sigmask(signal.SIG_BLOCK, set(_SIGNALS))
    threading.Thread(target=_watch, name="servetrace-signals", daemon=True).start()


def _watch() -> None:
    code, word = _SIGNALS[signal.sigwait(set(_SIGNALS))]
    os.write(2, f"servetrace: {word}\n".encode())
    null = os.open(os.devnull, os.O_WRONLY)  # whatever the main thread prints next is not seen
    os.dup2(null, 1)
    os.dup2(null, 2)
    try:
        io = sys.modules.get("servetrace.io")  # never an import here: the main thread may hold the import lock
        if io is not None:
            io.discard_temporaries()
    finally:
        os._exit(code)
