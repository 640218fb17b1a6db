"""``noim serve``: the web application, under uvicorn."""

from __future__ import annotations

from typing import Any

import click

from noim.cli.common import CliState, pass_state


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Keep the default behind a TLS reverse proxy (docs/operations.md).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--idle-minutes",
    default=30,
    show_default=True,
    type=click.IntRange(1, 24 * 60),
    help="A session unused this long ends.",
)
@click.option(
    "--absolute-hours",
    default=12,
    show_default=True,
    type=click.IntRange(1, 24 * 7),
    help="A session ends this long after login.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes. On PostgreSQL, one per core uses them all; SQLite is best "
    "served by one (its writers then wait in one queue).",
)
@click.option(
    "--secure-cookies/--no-secure-cookies",
    default=None,
    help="The session cookie's Secure flag (default: set unless serving on loopback).",
)
@pass_state
def serve(
    state: CliState,
    host: str,
    port: int,
    idle_minutes: int,
    absolute_hours: int,
    workers: int,
    secure_cookies: bool | None,
) -> None:
    """Serve the web application: coordinators, data manager, statisticians and DMC log in.

    Every user logs in with their own password (an administrator sets a one-time one with
    `noim users password NAME`). The demo's users all have the password "noim demo trial".
    """
    import os
    from datetime import timedelta

    import uvicorn

    from noim.web.app import CONFIG_ENV, config_for_workers, create_app
    from noim.web.settings import WebSettings

    db = state.db()
    if db.dialect == "sqlite":
        db.refresh_statistics()  # SQLite keeps none unless asked (Database.refresh_statistics)
    settings = WebSettings(
        idle_timeout=timedelta(minutes=idle_minutes),
        absolute_timeout=timedelta(hours=absolute_hours),
        secure_cookies=secure_cookies,
    )
    click.echo(
        f"noim: serving {db.engine.url.render_as_string(hide_password=True)} "
        f"at http://{host}:{port}/ with {workers} process{'es' if workers > 1 else ''} "
        "(Ctrl-C stops)"
    )
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": "warning",
        "proxy_headers": True,
        "forwarded_allow_ips": "127.0.0.1",
        "server_header": False,
    }
    if workers == 1:
        uvicorn.run(create_app(db, settings), **options)
        return
    # each worker process builds its own application (and connection pool) from the
    # environment: uvicorn imports the factory by name in every process it starts
    os.environ[CONFIG_ENV] = config_for_workers(db, settings)
    db.dispose()
    uvicorn.run("noim.web.app:app_from_env", factory=True, workers=workers, **options)
