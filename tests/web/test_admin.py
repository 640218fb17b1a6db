"""Administrators' pages: users (add, role, sites, deactivate, one-time password, sessions,
second factor) and the second factor by role."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from noim.db.models import AuditLog, AuthEvent, RoleSecurity, User, UserCredential, WebSession
from noim.db.session import Database
from noim.services import auth
from noim.web.pages import SESSION_COOKIE
from tests.web.conftest import (
    TEST_PASSWORD,
    count_statements,
    login,
    login_form_token,
    make_client,
    post,
)

ADMIN_PAGES = ["/admin/users", "/admin/users/new", "/admin/users/coord_gla", "/admin/roles"]
OTHERS = [
    "coord_gla",
    "coord_cro",
    "research_gla",
    "research_cro",
    "datamanager",
    "statistician",
    "unblinded_stat",
    "dmc_chair",
]
_OTP = re.compile(r"<code>([a-z2-9]{5}(?:-[a-z2-9]{5}){3})</code>")


def audit_rows(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditLog)) or 0)


def one_time_password(html: str) -> str:
    found = _OTP.search(html)
    assert found, html[:2000]
    return found.group(1)


def test_admin_pages_render_for_the_administrator(client, db: Database):
    login(client, "admin")
    for url in ADMIN_PAGES:
        page = client.get(url)
        assert page.status_code == 200, (url, page.text[:500])
        assert page.headers["cache-control"] == "no-store"
    listing = client.get("/admin/users").text
    for name in OTHERS:
        assert f'href="/admin/users/{name}"' in listing
    assert 'href="/admin/users"' in client.get("/").text  # the nav entry


@pytest.mark.parametrize("name", OTHERS)
def test_other_roles_are_refused_and_write_nothing(client, db: Database, name: str):
    login(client, name)
    assert 'href="/admin/users"' not in client.get("/").text
    for url in ADMIN_PAGES:
        assert client.get(url).status_code == 403, url
    before = audit_rows(db)
    forms = [
        ("/admin/users/new", {"name": "intruder", "role": "administrator"}),
        ("/admin/users/coord_cro/role", {"role": "administrator", "reason": "x"}),
        ("/admin/users/coord_cro/active", {"active": "no", "reason": "x"}),
        ("/admin/users/coord_cro/password", {}),
        ("/admin/users/coord_cro/logout", {}),
        ("/admin/users/coord_cro/second-factor", {}),
        ("/admin/roles", {"role": "coordinator", "required": "yes"}),
    ]
    for url, data in forms:
        assert post(client, url, data).status_code == 403, url
    assert audit_rows(db) == before
    with db.read() as s:
        assert s.scalar(select(User).where(User.name == "intruder")) is None
        assert s.scalar(select(User.role_code).where(User.name == "coord_cro")) == "coordinator"


def test_the_user_list_runs_a_fixed_number_of_statements(client, db: Database):
    login(client, "admin")
    client.get("/admin/users")
    with count_statements(db) as few:
        client.get("/admin/users")
    for i in range(6):
        post(client, "/admin/users/new", {"name": f"extra{i}", "role": "statistician"})
    with count_statements(db) as many:
        page = client.get("/admin/users")
    assert "extra5" in page.text
    assert len(many) == len(few), (len(few), len(many))


def test_add_a_user_shows_the_one_time_password_once_and_it_works(client, db: Database):
    login(client, "admin")
    response = post(
        client,
        "/admin/users/new",
        {"name": "newcoord", "display_name": "New Coord", "role": "coordinator", "sites": "CRO"},
    )
    assert response.status_code == 200
    password = one_time_password(response.text)
    with db.read() as s:
        user = s.scalar(select(User).where(User.name == "newcoord"))
        cred = s.get(UserCredential, user.id)
        assert cred.must_change and cred.password_hash.startswith("$argon2id$")
    # not shown again anywhere
    assert password not in client.get("/admin/users/newcoord").text
    assert password not in client.get("/admin/users").text
    # the new user logs in with it and must change it before anything else
    other = make_client(db)
    login(other, "newcoord", password)
    assert other.get("/").headers["location"] == "/password"
    assert other.get("/admin/users").headers["location"] == "/password"


def test_add_a_user_with_bad_input_rerenders_and_writes_nothing(client, db: Database):
    login(client, "admin")
    before = audit_rows(db)
    # a coordinator needs a site; a bad name; an unknown role
    page = post(client, "/admin/users/new", {"name": "c2", "role": "coordinator"})
    assert page.status_code == 422
    assert 'id="e-sites"' in page.text and "USR-002" in page.text
    assert 'value="c2"' in page.text  # what was typed is kept
    page = post(client, "/admin/users/new", {"name": "bad name!", "role": "statistician"})
    assert page.status_code == 422 and 'id="e-name"' in page.text and "USR-001" in page.text
    page = post(client, "/admin/users/new", {"name": "someone", "role": "emperor"})
    assert page.status_code == 422 and 'id="e-role"' in page.text
    page = post(client, "/admin/users/new", {"name": "coord_gla", "role": "statistician"})
    assert page.status_code == 422 and "already exists" in page.text
    assert audit_rows(db) == before
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.name == "c2")) == 0


def test_role_and_site_changes_are_in_the_audit_trail_and_act_at_once(client, db: Database):
    login(client, "admin")
    coord = make_client(db)
    login(coord, "coord_gla")
    assert "GLA" in coord.get("/").text
    response = post(
        client,
        "/admin/users/coord_gla/role",
        {"role": "coordinator", "sites": ["GLA", "CRO"], "reason": "covering Croydon"},
    )
    assert response.status_code == 303
    page = client.get("/admin/users/coord_gla")
    assert "CRO, GLA" in page.text
    # the open session acts with the new sites on its next page (no need to end it)
    assert "CRO, GLA" in coord.get("/").text
    response = post(
        client,
        "/admin/users/coord_gla/role",
        {"role": "researcher", "sites": ["CRO"], "reason": "now a researcher"},
    )
    assert response.status_code == 303
    assert "researcher" in coord.get("/").text
    with db.read() as s:
        rows = s.execute(
            select(AuditLog.table_name, AuditLog.reason).where(
                AuditLog.table_name.in_(("users", "user_sites"))
            )
        ).all()
    reasons = {(t, r) for t, r in rows}
    assert ("user_sites", "covering Croydon") in reasons
    assert ("users", "now a researcher") in reasons
    assert ("user_sites", "now a researcher") in reasons


def test_role_change_without_a_reason_or_with_a_bad_site_set_writes_nothing(client, db):
    login(client, "admin")
    before = audit_rows(db)
    page = post(client, "/admin/users/coord_gla/role", {"role": "statistician", "reason": ""})
    assert page.status_code == 422 and "reason" in page.text
    # a coordinator with no site
    page = post(client, "/admin/users/coord_gla/role", {"role": "coordinator", "reason": "x"})
    assert page.status_code == 422 and 'id="e-sites"' in page.text
    # a statistician with a site
    page = post(
        client,
        "/admin/users/statistician/role",
        {"role": "statistician", "sites": "GLA", "reason": "x"},
    )
    assert page.status_code == 422 and "USR-002" in page.text
    assert audit_rows(db) == before


def test_deactivate_ends_sessions_at_the_next_request_and_reactivate(client, db: Database):
    login(client, "admin")
    victim = make_client(db)
    login(victim, "coord_cro")
    assert victim.get("/").status_code == 200
    page = post(client, "/admin/users/coord_cro/active", {"active": "no", "reason": ""})
    assert page.status_code == 422  # a reason is needed
    assert victim.get("/").status_code == 200
    response = post(client, "/admin/users/coord_cro/active", {"active": "no", "reason": "left"})
    assert response.status_code == 303
    gone = victim.get("/")
    assert gone.status_code == 303 and gone.headers["location"] == "/login"
    # and may not log in again
    token = login_form_token(victim)
    refused = victim.post(
        "/login", data={"name": "coord_cro", "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert refused.status_code == 401
    # an administrator may not deactivate themself
    page = post(client, "/admin/users/admin/active", {"active": "no", "reason": "oops"})
    assert page.status_code == 422 and "USR-005" in page.text
    post(client, "/admin/users/coord_cro/active", {"active": "yes", "reason": "back"})
    login(make_client(db), "coord_cro")


def test_reset_password_shows_a_new_one_time_password_ends_sessions_and_clears_lockout(
    client, db: Database
):
    login(client, "admin")
    victim = make_client(db)
    login(victim, "datamanager")
    # lock the account
    attacker = make_client(db)
    for _ in range(auth.LOCKOUT_AFTER):
        t = login_form_token(attacker)
        attacker.post("/login", data={"name": "datamanager", "password": "nope", "csrf_token": t})
    assert "until" in client.get("/admin/users").text
    response = post(client, "/admin/users/datamanager/password")
    assert response.status_code == 200
    password = one_time_password(response.text)
    assert victim.get("/").status_code == 303  # the old session has ended
    fresh = make_client(db)
    login(fresh, "datamanager", password)  # the lockout is cleared
    assert fresh.get("/").headers["location"] == "/password"
    with db.read() as s:
        kinds = list(s.scalars(select(AuthEvent.kind).where(AuthEvent.user_name == "datamanager")))
    assert "lockout" in kinds and "password_set" in kinds


def test_end_sessions(client, db: Database):
    login(client, "admin")
    victim = make_client(db)
    login(victim, "statistician")
    response = post(client, "/admin/users/statistician/logout")
    assert response.status_code == 303
    assert "1 session(s) of statistician ended" in client.get("/admin/users/statistician").text
    assert victim.get("/").status_code == 303
    with db.read() as s:
        live = s.scalar(
            select(func.count())
            .select_from(WebSession)
            .join(User, User.id == WebSession.user_id)
            .where(User.name == "statistician", WebSession.revoked_at.is_(None))
        )
    assert live == 0


def test_second_factor_compulsory_per_role_page(client, db: Database):
    login(client, "admin")
    response = post(client, "/admin/roles", {"role": "data_manager", "required": "yes"})
    assert response.status_code == 303
    assert "compulsory" in client.get("/admin/roles").text
    with db.read() as s:
        assert s.get(RoleSecurity, "data_manager").second_factor_required
        audited = s.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.table_name == "role_security")
        )
    assert audited
    dm = make_client(db)
    login(dm, "datamanager")
    assert dm.get("/").headers["location"] == "/second-factor"
    page = post(client, "/admin/roles", {"role": "emperor", "required": "yes"})
    assert page.status_code == 422 and "USR-004" in page.text
    post(client, "/admin/roles", {"role": "data_manager", "required": "no"})
    with db.read() as s:
        assert not s.get(RoleSecurity, "data_manager").second_factor_required


def test_unknown_user_is_a_404(client):
    login(client, "admin")
    assert client.get("/admin/users/nobody").status_code == 404
    assert post(client, "/admin/users/nobody/logout").status_code == 404


def test_session_cookie_of_the_admin_is_not_in_any_page(client):
    login(client, "admin")
    token = client.cookies.get(SESSION_COOKIE)
    for url in ADMIN_PAGES:
        assert token not in client.get(url).text
