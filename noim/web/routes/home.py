"""Home: each role's next tasks (the coordinators' work queue is built on this)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from noim.web.pages import WebRequest, render, view


@view()
def home(req: WebRequest) -> Response:
    return render(req, "home.html")


routes = [Route("/", home, methods=["GET"])]
