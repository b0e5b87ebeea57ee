"""The `servetrace` command and `python -m servetrace`: signals are taken over before anything
else is imported (servetrace.interrupt), then the CLI runs.

The first statements block SIGINT / SIGTERM (a signal arriving later waits for the watcher
thread); one arriving before them, while Python still raises KeyboardInterrupt for it, ends the
run the same way: one line, exit 130, nothing written yet. (Before Python runs this module, in
its own start-up, Python's handling applies.)

OpenBLAS (numpy's and scipy's) is told, before either loads, to let its idle threads sleep after
a few cycles instead of spinning for ~2^28: a characterize calls it in short bursts between numpy
and DuckDB work, and the spinning took ~8 % of the CPU of a 10 M-row run on two cores (the sums
are the same: its threads split the work as before). A value the caller set is kept.

glibc's malloc is held to two arenas (M_ARENA_MAX), as MALLOC_ARENA_MAX=2 would: by default each
thread that allocates may get an arena of its own (up to 8 per core), and each keeps the numpy
work arrays it freed, so the row stream's threads raised a 10 M-row characterize's peak RSS by
~55 MB (BurstGPT-shaped, 4 alternated runs each: 1,129-1,203 -> 1,106-1,142 MB, no slower). Done
before any thread starts; a MALLOC_ARENA_MAX the caller set is kept; elsewhere than glibc, nothing."""

try:
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    from servetrace.interrupt import install
except KeyboardInterrupt:
    import os

    os.write(2, b"servetrace: interrupted\n")
    os._exit(130)


def main() -> None:
    import os

    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    _two_malloc_arenas(os.environ)
    install()
    from servetrace.cli import main as cli_main

    cli_main()


def _two_malloc_arenas(environ) -> None:
    if "MALLOC_ARENA_MAX" in environ:  # glibc read it at start-up
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's C library
    except (OSError, AttributeError):  # not glibc (macOS): nothing to set
        return
    mallopt(-8, 2)  # M_ARENA_MAX


if __name__ == "__main__":
    main()
