"""`loraforge tokens`: service tokens for programs (e.g. clients of `loraforge serve`).

The CLI acts as this machine's operator (an admin, ``cli:<os user>`` in the audit log).
Imported at the end of cli/app.py, whose console and helpers it shares.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from loraforge.cli.app import JsonOpt, _print_json, console
from loraforge.cli.tables import Column, fitted_table

tokens_app = typer.Typer(
    help="Service tokens: long-lived, scoped, revocable bearer tokens for programs.",
    no_args_is_help=True,
)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


@tokens_app.command("create")
def create(
    name: Annotated[
        str, typer.Option(metavar="NAME", help="Who uses it, e.g. 'checkout-service'.")
    ],
    scope: Annotated[
        str, typer.Option(metavar="SCOPE", help="What it may do: predict.")
    ] = "predict",
    days: Annotated[
        int, typer.Option(min=1, max=3650, metavar="N", help="Valid for this many days.")
    ] = 365,
    as_json: JsonOpt = False,
) -> None:
    """Create a token and print it once (only its id is kept): keep it secret."""
    from loraforge.audit import log as audit
    from loraforge.auth import service_tokens
    from loraforge.auth.users import local_operator
    from loraforge.db.engine import session_scope
    from loraforge.settings import get_settings

    settings = get_settings()
    actor = local_operator()
    with session_scope(settings.resolved_database_url()) as session:
        token, row = service_tokens.create(
            session, name=name, scope=scope, days=days, actor=actor, settings=settings
        )
        audit.record(
            session,
            action="token.create",
            outcome=audit.SUCCESS,
            username=actor.username,
            target=f"token:{row.id}",
            client="cli",
            detail={"name": row.name, "scope": row.scope, "expires_at": row.expires_at.isoformat()},
        )
    if as_json:
        _print_json(
            {
                "token": token,
                "id": row.id,
                "name": row.name,
                "scope": row.scope,
                "expires_at": row.expires_at,
            }
        )
        return
    console.print(
        f"[green]✓[/green] service token {escape(row.name)} ({row.id}), scope {row.scope}, "
        f"valid until {_when(row.expires_at)} UTC. Shown once:",
        highlight=False,
    )
    typer.echo(token)


@tokens_app.command("list")
def list_tokens(as_json: JsonOpt = False) -> None:
    """Every service token: name, scope, who made it, until when, revoked or not."""
    from loraforge.auth import service_tokens
    from loraforge.db.engine import session_scope
    from loraforge.settings import get_settings

    with session_scope(get_settings().resolved_database_url()) as session:
        found = service_tokens.list_tokens(session)
    if as_json:
        _print_json([row.__dict__ for row in found])
        return
    if not found:
        console.print("no service tokens (loraforge tokens create --name NAME --scope predict)")
        return
    fitted_table(
        console,
        [
            Column("id", lambda t: t.id),
            Column("name", lambda t: escape(t.name)),
            Column("scope", lambda t: t.scope),
            Column("valid until (UTC)", lambda t: _when(t.expires_at)),
            Column(
                "revoked",
                lambda t: (
                    f"{_when(t.revoked_at)} by {escape(t.revoked_by or '-')}"
                    if t.revoked_at
                    else "-"
                ),
            ),
            Column("created by", lambda t: escape(t.created_by or "-")),
        ],
        found,
        drop_first=("created by", "valid until (UTC)"),
        fallback=lambda t: f"{t.id}  {t.name}",
    )


@tokens_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (tokens list).")],
) -> None:
    """Revoke a token: the next request that sends it is refused (401)."""
    from loraforge.audit import log as audit
    from loraforge.auth import service_tokens
    from loraforge.auth.users import local_operator
    from loraforge.db.engine import session_scope
    from loraforge.settings import get_settings

    actor = local_operator()
    with session_scope(get_settings().resolved_database_url()) as session:
        row = service_tokens.revoke(session, token_id.strip(), actor=actor)
        audit.record(
            session,
            action="token.revoke",
            outcome=audit.SUCCESS,
            username=actor.username,
            target=f"token:{row.id}",
            client="cli",
            detail={"name": row.name},
        )
    console.print(f"[green]✓[/green] revoked {escape(row.name)} ({row.id})", highlight=False)
