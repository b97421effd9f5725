"""``python -m nncompare`` and the ``nncompare`` script: signals are handled from the first moment, then the CLI."""

from nncompare.interrupts import install_early, settle


def main() -> None:
    install_early()  # before the imports (seconds: numpy, click), so a Ctrl-C then is one line too
    from nncompare.cli import main as cli_main

    try:
        cli_main()
    finally:
        settle()  # the exit status is decided; a signal while the interpreter shuts down must not change it


if __name__ == "__main__":
    main()
