"""`loraforge models` (the base-model catalog, and which models load offline here) and
`loraforge models pull NAME` (fetch one once, for an air-gapped machine).
Imported at the end of cli/app.py, whose console it shares.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from loraforge.cli.app import JsonOpt, console

models_app = typer.Typer(
    help="Base models: the catalog, and fetching one for offline use.",
    invoke_without_command=True,
)


def _languages(row: dict) -> str:
    if len(row["languages"]) == 1:
        return row["languages"][0]
    return f"{len(row['languages'])} languages"


@models_app.callback()
def models(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The base-model catalog: its names work as model.base_model (so do any Hugging Face
    id and a local folder). `offline` says whether the model loads on this machine without
    the network; `loraforge models pull NAME` fetches one that does not."""
    if ctx.invoked_subcommand is not None:
        return
    from loraforge.cli.tables import Column, fitted_table
    from loraforge.models.catalog import catalog_listing

    rows = catalog_listing()
    if as_json:
        print(json.dumps({"data": rows}, indent=2))
        return
    columns = [
        Column("name", lambda r: r["name"]),
        Column("language", _languages),
        Column("offline", lambda r: "yes" if r["available_offline"] else "no"),
        Column("source", lambda r: escape(r["source"])),
        Column("description", lambda r: escape(r["description"]), wrap=True),
    ]
    fitted_table(
        console, columns, rows, drop_first=("source", "description"), fit_width=console.is_terminal
    )
    if not all(row["available_offline"] for row in rows):
        console.print(
            "[dim]offline no: fetched from the Hugging Face hub on first use; "
            "`loraforge models pull NAME` fetches it now.[/dim]"
        )


@models_app.command("pull")
def pull(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="A catalog name, a Hugging Face id (org/name) or a local folder."
        ),
    ],
    to: Annotated[
        Path | None,
        typer.Option(
            "--to",
            metavar="DIR",
            help="Put the files in this folder (then use it as model.base_model) instead of "
            "the Hugging Face cache.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Fetch again; replace what --to holds.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Download a base model once (config, safetensors weights, tokenizer; never pickled
    weights) into the Hugging Face cache (HF_HOME) or --to DIR, so that a machine without
    network access can train with it: copy that cache or folder there."""
    from loraforge.models.pull import describe, pull_model

    if not as_json:
        console.print(f"pulling {escape(name)} …", style="dim", highlight=False)
    result = pull_model(name, to, force=force)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    console.print(f"✓ {escape(describe(result))}", highlight=False)
    if to is not None:
        console.print(
            f"  use it with: --set model.base_model={escape(str(result.folder))}",
            highlight=False,
        )
