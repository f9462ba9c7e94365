"""`safetynet serve` and `safetynet keys ...`.

BentoML and the database (SQLAlchemy) are imported inside the commands, so that
`safetynet --help` stays fast (docs/architecture.md, "Start-up time").
"""

from __future__ import annotations

import typer

from safetynet.config import get_settings, load_policy

keys_app = typer.Typer(help="Manage API keys (stored hashed in the service database).",
                       no_args_is_help=True)


def serve(
    host: str = typer.Option(None, help="Address to bind (default: SAFETYNET_SERVE_HOST)."),
    port: int = typer.Option(None, help="Port (default: SAFETYNET_SERVE_PORT, 3000)."),
) -> None:
    """Start the scoring API (BentoML) with the champion model."""
    import bentoml

    from safetynet.db.migrate import migrate

    settings = get_settings()
    load_policy()  # a bad policy stops here (exit 2), not inside every worker
    migrate(settings)  # once here, so workers do not race to create tables
    bentoml.serve(
        "safetynet.serving.service:SafetyNet",
        host=host or settings.serve_host,
        port=port or settings.serve_port,
        blocking=True,
    )


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., help="platform, caseworker or admin."),
    districts: str = typer.Option(None, help="Comma-separated districts (caseworker keys)."),
    name: str = typer.Option(None, help="A label for the key, e.g. who holds it."),
) -> None:
    """Create a key and print it (only the key, once) on standard output."""
    from safetynet.serving.keys import create_key

    try:
        key_id, token = create_key(
            _migrated_engine(), role, districts.split(",") if districts else None, name
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created key {key_id} ({role})", err=True)
    typer.echo(token)


@keys_app.command("list")
def keys_list() -> None:
    """List keys: id, role, districts, name, created, revoked (never the key itself)."""
    from safetynet.serving.keys import list_keys

    engine = _migrated_engine()
    typer.echo("id\trole\tdistricts\tname\tprefix\tcreated_at\trevoked_at")
    for k in list_keys(engine):
        typer.echo("\t".join(str(x) for x in (
            k["id"], k["role"], ",".join(k["districts"] or []) or "-", k["name"] or "-",
            k["prefix"], k["created_at"], k["revoked_at"] or "-",
        )))


@keys_app.command("revoke")
def keys_revoke(key_id: int = typer.Argument(..., help="The key's id (see `keys list`).")) -> None:
    """Revoke a key (takes effect in running services within SAFETYNET_SERVE_KEY_CACHE_SECONDS)."""
    from safetynet.serving.keys import revoke_key

    if not revoke_key(_migrated_engine(), key_id):
        typer.echo(f"error: no active key with id {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked key {key_id}", err=True)


def _migrated_engine():
    """The service database's engine, its schema migrated to the latest revision."""
    from safetynet.db.engine import get_engine
    from safetynet.db.migrate import migrate

    migrate()
    return get_engine()
