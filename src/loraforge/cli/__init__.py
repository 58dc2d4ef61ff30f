"""The command line: a thin Typer shell over the services."""

from loraforge.cli.app import app

__all__ = ["app"]
