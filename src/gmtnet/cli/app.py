"""Entry point of the ``gmtnet`` command."""

from __future__ import annotations

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


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; known problems print one ``error:`` line and exit with status 1."""
    # pymatgen reports every CIF whose coordinates it rounds to ideal values; not a problem here.
    warnings.filterwarnings("ignore", message="Issues encountered while parsing CIF")
    try:
        app(args=argv, prog_name="gmtnet")
    except (GmtnetError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
