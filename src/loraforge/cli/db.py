"""`loraforge db upgrade`: bring the database schema up to date, once, before the services.

Every process migrates on first use anyway (db/engine.py); a deployment runs this first
(the Helm chart's migration Job, compose's `migrate` service) so that many replicas
starting at once do not race to migrate a fresh PostgreSQL.
Imported at the end of cli/app.py, whose console it shares.
"""

from __future__ import annotations

import typer
from rich.markup import escape

from loraforge.cli.app import console

db_app = typer.Typer(help="The platform's database.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade() -> None:
    """Create or migrate the schema to the newest revision (safe to run again)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    from loraforge.db.engine import get_engine
    from loraforge.errors import Unavailable
    from loraforge.settings import get_settings

    url = get_settings().resolved_database_url()
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        get_engine(url)  # migrates to head, or finds it there
    except OperationalError as failure:
        reason = str(failure.orig or failure).strip().splitlines()[0]
        raise Unavailable(
            f"cannot reach the database {shown}: {reason}",
            hint="Start it, or point LORAFORGE_DATABASE_URL at one that runs.",
        ) from None
    console.print(f"✓ database schema is up to date: {escape(shown)}", highlight=False)
