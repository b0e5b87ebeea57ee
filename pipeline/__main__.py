"""The `servetrace` command and `python -m servetrace`: signals are taken over before anything
else is imported (servetrace.interrupt), then the CLI runs.

The first statements block SIGINT / SIGTERM (a signal arriving later waits for the watcher
thread); one arriving before them, while Python still raises KeyboardInterrupt for it, ends the
run the same way: one line, exit 130, nothing written yet. (Before Python runs this module, in
its own start-up, Python's handling applies.)"""

try:
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    from servetrace.interrupt import install
except KeyboardInterrupt:
    import os

    os.write(2, b"servetrace: interrupted\n")
    os._exit(130)


def main() -> None:
    install()
    from servetrace.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
