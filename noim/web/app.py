"""The ASGI application: ``create_app(db)`` -> Starlette."""

from __future__ import annotations

import importlib
import json
import os
from datetime import timedelta
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from noim.db.session import Database
from noim.web.pages import ENV, error_page
from noim.web.security import SecurityHeaders
from noim.web.settings import WebSettings

#: the areas of the application (noim/web/routes/<name>.py, each with ``routes``)
ROUTE_MODULES = [
    "auth",
    "home",
    "coord",  # before "records": /families/new is not a family
    "records",
    "forms",
    "forms_assessments",
    "forms_events",
    "dm",
    "analysis",
    "admin",
]

STATIC = Path(__file__).parent / "static"


def all_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for name in ROUTE_MODULES:
        module = importlib.import_module(f"noim.web.routes.{name}")
        routes.extend(module.routes)
    routes.append(Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"))
    return routes


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    titles = {404: "Not found", 405: "Not allowed"}
    message = {404: f"There is no page {request.url.path}."}.get(status, "The request failed.")
    return error_page(request, status, titles.get(status, "Error"), message)


def create_app(db: Database, settings: WebSettings | None = None) -> Starlette:
    """The web application serving ``db``."""
    app = Starlette(
        routes=all_routes(),
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: _http_error},
    )
    app.state.db = db
    app.state.settings = settings or WebSettings()
    _compile_templates()
    return app


def _compile_templates() -> None:
    """Compile every page template now (once per process; Jinja keeps them), not on the
    first request that renders it: that request waited 50 to 100 ms longer, and with
    several server processes each process's first visitors paid it again."""
    for name in ENV.list_templates(extensions=["html"]):
        ENV.get_template(name)


#: how ``noim serve --workers N`` hands its database and settings to its worker processes
CONFIG_ENV = "NOIM_SERVE_CONFIG"


def config_for_workers(db: Database, settings: WebSettings) -> str:
    """``db`` and ``settings`` as the value of ``CONFIG_ENV`` (read by ``app_from_env``).

    The database URL keeps its password: the variable lives only in the environment of the
    server and its own worker processes, as the URL did on its command line.
    """
    return json.dumps(
        {
            "url": db.engine.url.render_as_string(hide_password=False),
            "idle_s": settings.idle_timeout.total_seconds(),
            "absolute_s": settings.absolute_timeout.total_seconds(),
            "secure_cookies": settings.secure_cookies,
        }
    )


def app_from_env() -> Starlette:
    """The application of one worker process of ``noim serve --workers N``.

    uvicorn starts each worker in a new process and calls this factory by name there; the
    database and settings come from ``CONFIG_ENV``, set by ``noim serve``.
    """
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        raise RuntimeError(
            f"{CONFIG_ENV} is not set: expected the JSON that `noim serve --workers N` sets "
            "for its worker processes (start the server with `noim serve`)"
        )
    cfg = json.loads(raw)
    settings = WebSettings(
        idle_timeout=timedelta(seconds=cfg["idle_s"]),
        absolute_timeout=timedelta(seconds=cfg["absolute_s"]),
        secure_cookies=cfg["secure_cookies"],
    )
    return create_app(Database(cfg["url"]), settings)
