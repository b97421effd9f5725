"""The ``nncompare`` command line: one group, one module per command family.

Every failure the user can fix is one line on stderr and a non-zero exit (2 for bad
input), never a traceback; see :func:`main`.
"""

from __future__ import annotations

import sys

import click

from nncompare import __version__
from nncompare.errors import NNCompareError
from nncompare.interrupts import Interrupted, handled


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(version=__version__, prog_name="nncompare")
def cli():
    """Train one scikit-learn MLP job on local, Dask and Spark engines, and measure it."""


def _register():
    from nncompare.cli import data, run

    cli.add_command(run.run)
    cli.add_command(data.data)
    for module_name in ("sweep", "paper", "report", "gate"):
        try:
            module = __import__(f"nncompare.cli.{module_name}", fromlist=["commands"])
        except ModuleNotFoundError as exc:
            if exc.name == f"nncompare.cli.{module_name}":
                continue
            raise
        for command in module.commands:
            cli.add_command(command)


_register()


def fail(message: str, code: int) -> NoReturn:  # noqa: F821
    click.echo(f"nncompare: error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point: click's usage errors and ours become one line and exit code 2."""
    try:
        with handled():
            cli.main(args=argv, prog_name="nncompare", standalone_mode=False)
    except Interrupted as exc:
        fail(f"interrupted by {exc}; stopped, and nothing unfinished was recorded", exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare "nncompare data": show help, like click
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(2)
    except click.UsageError as exc:
        hint = (
            f" (see 'nncompare {exc.ctx.command_path.split(' ', 1)[-1]} --help')"
            if exc.ctx and " " in exc.ctx.command_path
            else " (see 'nncompare --help')"
        )
        fail(exc.format_message().splitlines()[0] + hint, 2)
    except NNCompareError as exc:
        fail(str(exc), exc.exit_code)
    except (KeyboardInterrupt, click.Abort):
        fail("interrupted; nothing was written for the unfinished run", 130)
    except BrokenPipeError:
        sys.exit(1)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
