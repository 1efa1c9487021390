"""``plateseg db``: manage the results database schema."""

from __future__ import annotations

import typer

from plateseg.cli.output import console

app = typer.Typer(help="Manage the results database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(
    url: str = typer.Option("", help="Database URL (default: PLATESEG_DATABASE_URL or SQLite)."),
) -> None:
    """Upgrade the database schema to the latest revision."""
    from plateseg.db.engine import get_engine, upgrade

    engine = get_engine(url or None)
    upgrade(engine)
    url_shown = engine.url.render_as_string(hide_password=True)
    console.print(f"database schema up to date: {url_shown}", soft_wrap=True)
