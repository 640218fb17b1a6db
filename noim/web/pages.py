"""How a page is served: the session's user, the CSRF check, the form, the template.

``@view`` turns a plain function ``def page(req: WebRequest) -> Response`` into a Starlette
endpoint. The decorator does everything that must never be forgotten on one page:

* the acting user is the session's (no other way to pick one): no session, to ``/login``;
* a session still owing a new password or a second factor may do only that;
* the role's capability, when the page names one (403 otherwise);
* every request that is not a GET or HEAD carries the session's CSRF token in the form
  (403 otherwise, and the page's function is never called: nothing is written);
* the page runs in a worker thread (the services are synchronous);
* ``NotFound`` becomes a 404 page and ``PermissionDenied`` a 403 page.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from noim.db.session import Database
from noim.domain.exceptions import NotFound, PermissionDenied
from noim.domain.roles import Actor, Capability
from noim.services import auth
from noim.web.forms import fmt_date
from noim.web.nav import nav_for
from noim.web.security import is_loopback
from noim.web.settings import WebSettings

SESSION_COOKIE = "noim_session"
#: the CSRF token of the login form, before there is a session (double-submit cookie)
LOGIN_CSRF_COOKIE = "noim_login_csrf"
CSRF_FIELD = "csrf_token"
#: the message shown once on the next page (signed for the session: ``redirect``)
FLASH_COOKIE = "noim_flash"

TEMPLATES = Path(__file__).parent / "templates"


def _fmt_datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    return f"{fmt_date(value.date())} {value:%H:%M} UTC"


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _fmt_datetime(value)
    if isinstance(value, date):
        return fmt_date(value)
    return str(value)


ENV = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.globals.update(fmt_date=fmt_date, fmt_datetime=_fmt_datetime, fmt=_fmt, quote=quote)
ENV.filters.update(fmt_date=fmt_date, fmt_datetime=_fmt_datetime, fmt=_fmt)


@dataclass
class WebRequest:
    """One request as a page function sees it."""

    request: Request
    db: Database
    actor: Actor
    session: auth.SessionInfo
    settings: WebSettings
    form: dict[str, str] = field(default_factory=dict)
    form_lists: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query_params)

    @property
    def params(self) -> Mapping[str, Any]:
        return self.request.path_params

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def csrf_token(self) -> str:
        return self.session.csrf_token


def app_state(request: Request) -> tuple[Database, WebSettings]:
    return request.app.state.db, request.app.state.settings


def render(
    req: WebRequest | Request,
    template: str,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered with the page's context (the user, nav, CSRF token, flash)."""
    if isinstance(req, WebRequest):
        base: dict[str, Any] = {
            "req": req,
            "request": req.request,
            "actor": req.actor,
            "csrf_token": req.csrf_token,
            "nav": nav_for(req.actor),
            "flash": req.session.flash,
            "path": req.request.url.path,
        }
    else:
        base = {
            "req": None,
            "request": req,
            "actor": None,
            "nav": [],
            "flash": None,
            "path": req.url.path,
        }
        base.setdefault("csrf_token", context.pop("csrf_token", ""))
    base.update(context)
    return HTMLResponse(ENV.get_template(template).render(base), status_code=status)


def redirect(req: WebRequest, url: str, flash: str | None = None) -> RedirectResponse:
    """303 to ``url``; ``flash`` is shown once on the next page.

    The message travels in a cookie signed with the session's CSRF secret (so it is shown
    only to that session, never one forged or left over from another): a message is not
    trial data, and keeping it in the sessions table cost two write transactions per form
    sent (to set it, and to clear it), each waiting for the write lock of SQLite.
    """
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE,
            flash_cookie(req.session, flash),
            httponly=True,
            samesite="lax",
            path="/",
            secure=cookie_secure(req.request),
        )
    return response


def _flash_mac(session: auth.SessionInfo, data: str) -> str:
    key = session.csrf_token.encode()
    return hmac.new(key, b"flash:" + data.encode(), hashlib.sha256).hexdigest()[:32]


def flash_cookie(session: auth.SessionInfo, message: str) -> str:
    """``message`` (up to 500 characters) as the value of the flash cookie of ``session``."""
    data = base64.urlsafe_b64encode(message[:500].encode()).decode().rstrip("=")
    return f"{data}.{_flash_mac(session, data)}"


def read_flash(session: auth.SessionInfo, value: str) -> str | None:
    """The message of a flash cookie signed for ``session``; None for any other value."""
    data, _dot, mac = value.rpartition(".")
    if not data or not hmac.compare_digest(mac.encode(), _flash_mac(session, data).encode()):
        return None
    try:
        return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def _sets_flash(response: Response) -> bool:
    return any(v.startswith(f"{FLASH_COOKIE}=") for v in response.headers.getlist("set-cookie"))


def cookie_secure(request: Request) -> bool:
    """The Secure flag of noim's cookies: as configured, else set except on loopback."""
    _db, settings = app_state(request)
    if settings.secure_cookies is not None:
        return settings.secure_cookies
    return not is_loopback(request.url.hostname)


def error_page(
    request: Request, status: int, title: str, message: str, actor: Actor | None = None
) -> HTMLResponse:
    context: dict[str, Any] = {
        "req": None,
        "request": request,
        "actor": actor,
        "nav": nav_for(actor) if actor is not None else [],
        "flash": None,
        "csrf_token": "",
        "path": request.url.path,
        "title": title,
        "message": message,
        "status": status,
    }
    return HTMLResponse(ENV.get_template("error.html").render(context), status_code=status)


def client_of(request: Request) -> str | None:
    host = request.client.host if request.client else None
    agent = request.headers.get("user-agent", "")[:80]
    return f"{host} {agent}".strip() or None


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


async def read_form(
    request: Request, max_bytes: int
) -> tuple[dict[str, str], dict[str, list[str]], dict[str, tuple[str, bytes]]]:
    if request.method in ("GET", "HEAD"):
        return {}, {}, {}
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise _TooLarge()
    form = await request.form(max_files=10, max_fields=2000)
    values: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            content = await value.read()
            if len(content) > max_bytes:
                raise _TooLarge()
            if value.filename:
                files[key] = (value.filename, content)
            continue
        values[key] = value
        lists.setdefault(key, []).append(value)
    return values, lists, files


class _TooLarge(Exception):
    pass


def login_url(request: Request) -> str:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return "/login" + ("" if target == "/" else f"?next={quote(target)}")


def view(
    capability: Capability | None = None,
    methods: tuple[str, ...] = ("GET",),
    *,
    allow_pending: bool = False,
) -> Callable[[Callable[[WebRequest], Response]], Callable[[Request], Any]]:
    """Make ``fn(req: WebRequest) -> Response`` an authenticated Starlette endpoint."""

    def decorate(fn: Callable[[WebRequest], Response]) -> Callable[[Request], Any]:
        @functools.wraps(fn)
        async def endpoint(request: Request) -> Response:
            db, settings = app_state(request)
            token = request.cookies.get(SESSION_COOKIE)
            try:
                session = await run_in_threadpool(
                    auth.session_for, db, token, idle_timeout=settings.idle_timeout
                )
            except auth.SessionInvalid:
                if request.method in ("GET", "HEAD"):
                    response: Response = RedirectResponse(login_url(request), status_code=303)
                else:
                    response = error_page(
                        request,
                        403,
                        "Not logged in",
                        "Your session has ended. Log in again; nothing was saved.",
                    )
                if token:
                    response.delete_cookie(SESSION_COOKIE, path="/")
                return response
            actor = session.actor
            if not allow_pending:
                # the second factor first: a password alone may not even change the password
                if session.second_factor_pending:
                    return RedirectResponse("/second-factor", status_code=303)
                if session.must_change_password:
                    return RedirectResponse("/password", status_code=303)
            if request.method not in methods:
                return error_page(
                    request, 405, "Not allowed", f"{request.method} is not accepted here.", actor
                )
            if capability is not None and not actor.can(capability):
                return error_page(
                    request,
                    403,
                    "Not allowed",
                    f"The {actor.role.value} role may not use this page.",
                    actor,
                )
            try:
                values, lists, files = await read_form(request, settings.max_upload_bytes)
            except _TooLarge:
                return error_page(
                    request,
                    413,
                    "Too large",
                    f"Uploads are limited to {settings.max_upload_bytes // 2**20} MiB.",
                    actor,
                )
            if request.method not in ("GET", "HEAD") and not csrf_ok(
                session.csrf_token, values.get(CSRF_FIELD)
            ):
                return error_page(
                    request,
                    403,
                    "Form expired",
                    "The form was not accepted (missing or wrong CSRF token): nothing was saved. "
                    "Go back, reload the page and send it again.",
                    actor,
                )
            values.pop(CSRF_FIELD, None)
            lists.pop(CSRF_FIELD, None)
            shown = request.cookies.get(FLASH_COOKIE)
            if shown is not None:
                session = replace(session, flash=read_flash(session, shown) or session.flash)
            req = WebRequest(request, db, actor, session, settings, values, lists, files)
            try:
                response = await run_in_threadpool(fn, req)
            except NotFound as exc:
                response = error_page(request, 404, "Not found", str(exc), actor)
            except PermissionDenied as exc:
                response = error_page(request, 403, "Not allowed", str(exc), actor)
            if shown is not None and not _sets_flash(response):
                response.delete_cookie(FLASH_COOKIE, path="/")  # shown once
            return response

        return endpoint

    return decorate


def new_csrf() -> str:
    return secrets.token_urlsafe(32)
