"""``plantlink historian ...``: the historian's own commands (``ddl``: the ClickHouse tables as a script, for
one server or a cluster; docs/historian-clickhouse.md). Loaded only when named (``plantlink.cli``)."""

from __future__ import annotations

from typing import Annotated

import typer

historian_app = typer.Typer(rich_markup_mode=None, add_completion=False, no_args_is_help=True)


@historian_app.command("ddl")
def ddl(
    cluster: Annotated[str | None, typer.Option(
        help="Make the tables for this cluster (as named in the servers' remote_servers): Replicated tables "
             "(Keeper) with Distributed tables over them, created ON CLUSTER. Without it: one server.")] = None,
    database: Annotated[str, typer.Option(help="The database that holds the historian's tables.")] = "plantlink",
    raw_days: Annotated[float, typer.Option(
        help="Keep raw samples this many days (a TTL on the server's clock; 0 keeps them forever).")] = 400.0,
    rollup_days: Annotated[float, typer.Option(
        help="Keep the 1-minute and 1-hour rollups this many days (0 keeps them forever).")] = 0.0,
) -> None:
    """Print the SQL that creates the ClickHouse historian's tables (run it with clickhouse-client, or let
    plantlink create them on a single server when it first opens the store)."""
    from plantlink.historian.clickhouse.schema import Layout, ddl_text

    if not database.replace("_", "").isalnum():
        raise typer.BadParameter("letters, digits and _ only", param_hint="--database")
    keep = {"raw": raw_days * 86400 or None, "rollup_1m": rollup_days * 86400 or None,
            "rollup_1h": rollup_days * 86400 or None}
    typer.echo(ddl_text(Layout(database, cluster), keep), nl=False)
