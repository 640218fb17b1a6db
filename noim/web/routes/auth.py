"""Logging in and out, and changing one's password."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from noim.domain.exceptions import NoimError
from noim.services import auth
from noim.web.forms import FormState
from noim.web.pages import (
    CSRF_FIELD,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    WebRequest,
    app_state,
    client_of,
    csrf_ok,
    error_page,
    new_csrf,
    read_form,
    redirect,
    render,
    view,
)
from noim.web.security import is_loopback


def secure_cookies(request: Request) -> bool:
    _db, settings = app_state(request)
    if settings.secure_cookies is not None:
        return settings.secure_cookies
    return not is_loopback(request.url.hostname)


def _safe_next(target: str | None) -> str:
    """Only a path of this site (never another host) to go to after logging in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(request: Request, form: FormState, status: int = 200) -> Response:
    token = new_csrf()
    response = render(
        request,
        "login.html",
        status=status,
        form=form,
        csrf_token=token,
        next=_safe_next(request.query_params.get("next")),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/login",
        secure=secure_cookies(request),
    )
    return response


async def login(request: Request) -> Response:
    db, settings = app_state(request)
    if request.method == "GET":
        return _login_page(request, FormState.empty())
    values, _lists, _files = await read_form(request, 64 * 1024)
    if not csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE, ""), values.get(CSRF_FIELD)):
        form = FormState.of({"name": values.get("name", "")})
        form.summary.append("The login form had expired; please log in again.")
        return _login_page(request, form, status=403)
    name = values.get("name", "")
    try:
        outcome = await run_in_threadpool(
            auth.log_in,
            db,
            name,
            values.get("password", ""),
            client=client_of(request),
            absolute_timeout=settings.absolute_timeout,
        )
    except auth.LoginRefused as exc:
        form = FormState.of({"name": name})
        form.summary.append(str(exc))
        return _login_page(request, form, status=401)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        # a session this browser held before (another user's, or one planted by someone
        # else) ends: after a login only the new session id is worth anything
        await run_in_threadpool(auth.log_out, db, previous)
    target = _safe_next(values.get("next"))
    if outcome.session.second_factor_pending:
        target = "/second-factor"
    elif outcome.session.must_change_password:
        target = "/password"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        outcome.token,
        httponly=True,
        samesite="lax",
        path="/",
        secure=secure_cookies(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@view(methods=("POST",), allow_pending=True)
def logout(req: WebRequest) -> Response:
    auth.log_out(req.db, req.request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@view(methods=("GET", "POST"), allow_pending=True)
def password(req: WebRequest) -> Response:
    if req.session.second_factor_pending:
        return RedirectResponse("/second-factor", status_code=303)
    if req.method == "GET":
        return render(req, "password.html", form=FormState.empty())
    values = dict.fromkeys(("current_password", "new_password", "repeat_password"), "")
    if req.form.get("new_password", "") != req.form.get("repeat_password", ""):
        form = FormState.of(values)
        form.errors["repeat_password"] = ["Expected the new password typed again, the same."]
        return render(req, "password.html", form=form, status=422)
    try:
        auth.change_password(
            req.db,
            req.session,
            req.form.get("current_password", ""),
            req.form.get("new_password", ""),
        )
    except NoimError as exc:
        form = FormState.failed(values, exc, known=list(values))
        return render(req, "password.html", form=form, status=422)
    return redirect(req, "/", "Your password was changed.")


@view(methods=("GET", "POST"), allow_pending=True)
def second_factor(req: WebRequest) -> Response:
    """Set up the second factor (the secret shown as text, confirmed with a code), or give
    the code at login."""
    enrolled = auth.second_factor_state(req.db, req.session)
    if enrolled and not req.session.second_factor_pending:
        if req.method == "POST":
            return RedirectResponse("/", status_code=303)
        return render(req, "second_factor.html", mode="done", form=FormState.empty())
    mode = "verify" if enrolled else "enrol"
    # a GET never writes: the secret is made by the "Set up" button (a POST), then shown
    # until confirmed
    enrolment = None if enrolled else auth.pending_enrolment(req.db, req.session)
    if req.method == "POST" and not enrolled and req.form.get("action") == "start":
        enrolment = auth.start_enrolment(req.db, req.session)
        return render(
            req, "second_factor.html", mode=mode, enrolment=enrolment, form=FormState.empty()
        )
    if req.method == "GET":
        return render(
            req, "second_factor.html", mode=mode, enrolment=enrolment, form=FormState.empty()
        )
    code = req.form.get("code", "")
    try:
        if enrolled:
            auth.verify_second_factor(req.db, req.session, code, client=client_of(req.request))
        else:
            auth.confirm_enrolment(req.db, req.session, code)
    except auth.LoginRefused as exc:
        response = error_page(req.request, 403, "Locked", str(exc))
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    except NoimError as exc:
        form = FormState.failed({"code": ""}, exc, known=["code"])
        return render(
            req, "second_factor.html", mode=mode, enrolment=enrolment, form=form, status=422
        )
    target = "/password" if req.session.must_change_password else "/"
    message = "Second factor given." if enrolled else "Your second factor is set up."
    return redirect(req, target, message)


routes = [
    Route("/login", login, methods=["GET", "POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/password", password, methods=["GET", "POST"]),
    Route("/second-factor", second_factor, methods=["GET", "POST"]),
]
