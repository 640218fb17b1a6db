"""Administrators' pages: users (add, role, sites, deactivate, one-time password, sessions,
second factor) and the second-factor rule of each role. Every form is one service call."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from noim.db.base import utcnow
from noim.domain.exceptions import NoimError, Problem, ValidationError
from noim.domain.roles import ROLE_SPECS, Capability, Role
from noim.services import auth, users
from noim.web.forms import FormState
from noim.web.pages import WebRequest, redirect, render, view

MANAGE = Capability.MANAGE_USERS

ROLE_CHOICES = [(r.value, ROLE_SPECS[r].label) for r in Role]


def _user_url(name: str) -> str:
    return f"/admin/users/{name}"


@view(MANAGE)
def user_list(req: WebRequest) -> Response:
    logins = auth.list_logins(req.db, req.actor)
    return render(req, "admin/users.html", logins=logins, now=utcnow())


def _new_form(req: WebRequest, form: FormState, status: int = 200) -> Response:
    return render(
        req,
        "admin/user_new.html",
        form=form,
        roles=ROLE_CHOICES,
        sites=users.site_codes(req.db),
        chosen=set(req.form_lists.get("sites", [])),
        status=status,
    )


@view(MANAGE, methods=("GET", "POST"))
def user_new(req: WebRequest) -> Response:
    if req.method == "GET":
        return _new_form(req, FormState.empty())
    values = {k: req.form.get(k, "") for k in ("name", "display_name", "role")}
    try:
        if not values["role"]:
            raise ValidationError(Problem("user", "role", "", "WEB-004", "a role"))
        info, password = auth.add_user(
            req.db,
            req.actor,
            values["name"].strip(),
            values["role"],
            req.form_lists.get("sites", []),
            values["display_name"].strip() or None,
        )
    except NoimError as exc:
        form = FormState.failed(values, exc, fields={"site": "sites"}, known=[*values, "sites"])
        return _new_form(req, form, status=422)
    return render(req, "admin/password_shown.html", name=info.name, password=password, new=True)


def _detail(req: WebRequest, name: str, forms: dict[str, FormState], status: int = 200) -> Response:
    found = auth.list_logins(req.db, req.actor, name)
    login = found[0]
    return render(
        req,
        "admin/user.html",
        login=login,
        events=auth.recent_events(req.db, req.actor, name),
        roles=ROLE_CHOICES,
        sites=users.site_codes(req.db),
        forms=forms,
        now=utcnow(),
        status=status,
    )


@view(MANAGE)
def user_detail(req: WebRequest) -> Response:
    return _detail(req, req.params["name"], {})


@view(MANAGE, methods=("POST",))
def user_role(req: WebRequest) -> Response:
    """Role and sites: one ``users.update_user`` call with the sites added and removed."""
    name = req.params["name"]
    current = auth.list_logins(req.db, req.actor, name)[0]
    chosen = [s for s in req.form_lists.get("sites", []) if s]
    values = {"role": req.form.get("role", ""), "reason": req.form.get("reason", "")}
    try:
        users.update_user(
            req.db,
            req.actor,
            name,
            values["reason"],
            role=values["role"] or None,
            add_sites=[s for s in chosen if s not in current.sites],
            remove_sites=[s for s in current.sites if s not in chosen],
        )
    except NoimError as exc:
        form = FormState.failed(values, exc, fields={"site": "sites"}, known=["role", "sites"])
        return _detail(req, name, {"role": form}, status=422)
    return redirect(req, _user_url(name), f"{name}'s role and sites were saved.")


@view(MANAGE, methods=("POST",))
def user_active(req: WebRequest) -> Response:
    name = req.params["name"]
    values = {"active": req.form.get("active", ""), "reason": req.form.get("reason", "")}
    try:
        if values["active"] not in ("yes", "no"):
            raise ValidationError(
                Problem(f"user {name}", "active", values["active"], "WEB-003", "yes or no")
            )
        users.update_user(
            req.db, req.actor, name, values["reason"], active=values["active"] == "yes"
        )
    except NoimError as exc:
        form = FormState.failed(values, exc, known=["active"])
        return _detail(req, name, {"active": form}, status=422)
    done = "reactivated" if values["active"] == "yes" else "deactivated: their sessions have ended"
    return redirect(req, _user_url(name), f"{name} was {done}.")


@view(MANAGE, methods=("POST",))
def user_password(req: WebRequest) -> Response:
    """A new one-time password, shown on this response only (never stored in clear)."""
    name = req.params["name"]
    password = auth.reset_password(req.db, req.actor, name)
    return render(req, "admin/password_shown.html", name=name, password=password, new=False)


@view(MANAGE, methods=("POST",))
def user_logout(req: WebRequest) -> Response:
    name = req.params["name"]
    count = auth.revoke_sessions(req.db, req.actor, name, reason="ended by administrator")
    return redirect(req, _user_url(name), f"{count} session(s) of {name} ended.")


@view(MANAGE, methods=("POST",))
def user_second_factor(req: WebRequest) -> Response:
    name = req.params["name"]
    try:
        auth.remove_second_factor(req.db, req.actor, name)
    except ValidationError as exc:
        return _detail(req, name, {"second_factor": FormState.failed({}, exc)}, status=422)
    return redirect(req, _user_url(name), f"{name}'s second factor was removed.")


@view(MANAGE, methods=("GET", "POST"))
def roles(req: WebRequest) -> Response:
    if req.method == "POST":
        role = req.form.get("role", "")
        required = req.form.get("required", "")
        try:
            if required not in ("yes", "no"):
                raise ValidationError(Problem("role", "required", required, "WEB-003", "yes or no"))
            auth.set_second_factor_required(req.db, req.actor, role, required == "yes")
        except NoimError as exc:
            form = FormState.failed({"role": role}, exc, known=[])
            return _roles_page(req, form, status=422)
        state = "compulsory" if required == "yes" else "optional"
        return redirect(req, "/admin/roles", f"A second factor is now {state} for {role}.")
    return _roles_page(req, FormState.empty())


def _roles_page(req: WebRequest, form: FormState, status: int = 200) -> Response:
    required = auth.roles_requiring_second_factor(req.db)
    rows = [(r.value, ROLE_SPECS[r].label, r.value in required) for r in Role]
    return render(req, "admin/roles.html", rows=rows, form=form, status=status)


routes = [
    Route("/admin/users", user_list, methods=["GET"]),
    Route("/admin/users/new", user_new, methods=["GET", "POST"]),
    Route("/admin/users/{name}", user_detail, methods=["GET"]),
    Route("/admin/users/{name}/role", user_role, methods=["POST"]),
    Route("/admin/users/{name}/active", user_active, methods=["POST"]),
    Route("/admin/users/{name}/password", user_password, methods=["POST"]),
    Route("/admin/users/{name}/logout", user_logout, methods=["POST"]),
    Route("/admin/users/{name}/second-factor", user_second_factor, methods=["POST"]),
    Route("/admin/roles", roles, methods=["GET", "POST"]),
]
