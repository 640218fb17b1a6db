"""The skeleton's trust boundary: login, the session cookie, CSRF, headers."""

from __future__ import annotations

from sqlalchemy import func, select

from noim.db.models import AuditLog, AuthEvent, WebSession
from noim.db.session import Database
from noim.services import auth
from noim.web.pages import SESSION_COOKIE
from tests.web.conftest import TEST_PASSWORD, csrf, login, login_form_token, post


def test_a_page_without_a_session_sends_to_login(client):
    response = client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    response = client.get("/password?x=1")
    assert response.headers["location"] == "/login?next=/password%3Fx%3D1"


def test_login_opens_a_server_side_session_and_logout_ends_it(client, db: Database):
    login(client, "coord_gla")
    token = client.cookies.get(SESSION_COOKIE)
    assert token and len(token) >= 40
    with db.read() as s:
        row = s.scalar(select(WebSession).where(WebSession.token_hash == auth.token_hash(token)))
        assert row is not None and row.revoked_at is None
        session_id = row.id
    page = client.get("/")
    assert page.status_code == 200 and "coord_gla" in page.text
    response = post(client, "/logout")
    assert response.status_code == 303
    with db.read() as s:
        assert s.get(WebSession, session_id).revoked_at is not None
    # the old cookie is worth nothing now
    client.cookies.set(SESSION_COOKIE, token)
    assert client.get("/").status_code == 303


def test_a_wrong_password_is_refused_and_audited(client, db: Database):
    token = login_form_token(client)
    response = client.post(
        "/login", data={"name": "coord_gla", "password": "not the password", "csrf_token": token}
    )
    assert response.status_code == 401
    assert "unknown user name or wrong password" in response.text
    assert SESSION_COOKIE not in response.cookies
    with db.read() as s:
        kinds = s.scalars(select(AuthEvent.kind)).all()
        audited = s.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.table_name == "auth_events")
        )
    assert kinds == ["login_failed"]
    assert audited and audited > 0


def test_a_post_without_the_csrf_token_writes_nothing(client, db: Database):
    login(client, "coord_gla")
    with db.read() as s:
        before = s.scalar(select(func.count()).select_from(AuditLog))
    response = client.post(
        "/password",
        data={
            "current_password": TEST_PASSWORD,
            "new_password": "a much better passphrase",
            "repeat_password": "a much better passphrase",
        },
    )
    assert response.status_code == 403
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditLog)) == before
    assert csrf(client)


def test_headers(client):
    login(client, "coord_gla")
    response = client.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["cache-control"] == "no-store"
    assert client.get("/static/noim.css").status_code == 200
