"""The `servetrace` command and `python -m servetrace`: signals are taken over before anything
else is imported (servetrace.interrupt), then the CLI runs."""

from servetrace.interrupt import install


def main() -> None:
    install()
    from servetrace.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
