"""Entry point of the ``gmtnet`` command."""

from __future__ import annotations

import os
import sys
import warnings

import typer

from gmtnet import __version__
from gmtnet.cli import data_commands, model_commands
from gmtnet.cli.predict_command import predict
from gmtnet.cli.symmetry_commands import symmetry
from gmtnet.cli.training_commands import evaluate, reproduce, train
from gmtnet.errors import GmtnetError

app = typer.Typer(
    name="gmtnet",
    help="Predict crystal tensor properties (dielectric, piezoelectric, elastic) with exact symmetry.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_commands.app, name="data")
app.add_typer(model_commands.app, name="model")
app.command()(predict)
app.command()(symmetry)
app.command()(train)
app.command()(evaluate)
app.command()(reproduce)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gmtnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """gmtnet command line."""


def _error_line(exc: BaseException) -> str:
    """One line naming the problem: the exception's first line, or for an operating-system error
    the file and the system's reason."""
    if isinstance(exc, OSError) and not isinstance(exc, GmtnetError) and exc.strerror:
        names = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        return f"{names}: {exc.strerror}" if names else exc.strerror
    if isinstance(exc, MemoryError):
        return "out of memory (an input too large for this machine)"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_usage_error(exc: Exception) -> bool:
    """A command-line usage error (unknown option, missing or invalid argument) raised by typer's
    parser: it carries ``format_message`` and the usage exit status 2."""
    return hasattr(exc, "format_message") and getattr(exc, "exit_code", None) == 2


def _command_path(exc: Exception) -> str:
    ctx = getattr(exc, "ctx", None)
    return getattr(ctx, "command_path", None) or "gmtnet"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; known problems print one ``error:`` line and exit with status 1.

    Known problems: gmtnet's own errors, invalid values, usage errors (an unknown option, a
    missing argument), files that cannot be read or written, memory exhausted."""
    # pymatgen reports every CIF whose coordinates it rounds to ideal values; not a problem here.
    warnings.filterwarnings("ignore", message="Issues encountered while parsing CIF")
    try:
        code = app(args=argv, prog_name="gmtnet", standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:  # e.g. `gmtnet predict ... | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except (GmtnetError, ValueError, OSError, MemoryError) as exc:
        typer.echo(f"error: {_error_line(exc)}", err=True)
        sys.exit(1)
    except Exception as exc:
        if not _is_usage_error(exc):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError" and getattr(exc, "ctx", None) is not None:
            typer.echo(exc.ctx.get_help(), err=True)  # a bare command: its help, as a usage error
            sys.exit(2)
        typer.echo(f"error: {exc.format_message()} (see {_command_path(exc)} --help)", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
