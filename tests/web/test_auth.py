"""Security tests of the web application's trust boundary, written as an attacker would try:
CSRF, session fixation, logout, timeouts, lockout, hashes, cookie flags, headers, choosing the
acting user, open redirects, user enumeration, secrets in responses, audit trail and logs."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from noim.db.base import utcnow
from noim.db.models import AuditLog, AuthEvent, User, UserCredential, WebSession
from noim.db.session import Database
from noim.services import auth, users
from noim.web.pages import LOGIN_CSRF_COOKIE, SESSION_COOKIE
from noim.web.security import CSP
from noim.web.settings import WebSettings
from tests.web.conftest import (
    TEST_PASSWORD,
    csrf,
    give_passwords,
    login,
    login_form_token,
    make_client,
    post,
)

NEW_PASSWORD = "a rather long new passphrase"


def audit_rows(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditLog)) or 0)


def live_sessions(db: Database, name: str) -> int:
    with db.read() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(WebSession)
                .join(User, User.id == WebSession.user_id)
                .where(User.name == name, WebSession.revoked_at.is_(None))
            )
            or 0
        )


def try_login(client: TestClient, name: str, password: str, **extra: str):
    token = login_form_token(client)
    return client.post(
        "/login", data={"name": name, "password": password, "csrf_token": token, **extra}
    )


def plant(client: TestClient, value: str) -> None:
    """A session cookie set in the browser before login (as the server would set it)."""
    client.cookies.set(SESSION_COOKIE, value, domain="127.0.0.1", path="/")


# --------------------------------------------------------------------------- CSRF


FORMS = [
    ("/password", {"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD,
                   "repeat_password": NEW_PASSWORD}),
    ("/logout", {}),
    ("/admin/users/new", {"name": "mallory", "role": "administrator"}),
    ("/admin/users/coord_gla/password", {}),
    ("/admin/users/coord_gla/active", {"active": "no", "reason": "csrf"}),
    ("/admin/roles", {"role": "coordinator", "required": "yes"}),
    ("/second-factor", {"code": "123456"}),
]  # fmt: skip


@pytest.mark.parametrize(("url", "data"), FORMS, ids=[u for u, _ in FORMS])
def test_a_post_without_a_right_csrf_token_is_refused_and_writes_nothing(
    client, db: Database, url: str, data: dict[str, str]
):
    other = make_client(db)
    login(other, "coord_cro")
    other_token = csrf(other)
    login(client, "admin")
    own = csrf(client)
    before = audit_rows(db)
    for token in (None, "", "not-the-token", other_token, own[:-1]):
        sent = dict(data) if token is None else {**data, "csrf_token": token}
        response = client.post(url, data=sent)
        assert response.status_code == 403, (url, token, response.status_code)
        assert "nothing was saved" in response.text
    assert audit_rows(db) == before
    assert live_sessions(db, "admin") == 1  # logout without the token did not log out
    with db.read() as s:
        assert s.scalar(select(User).where(User.name == "mallory")) is None
    assert client.get("/").status_code == 200


def test_a_get_never_changes_anything(client, db: Database):
    login(client, "admin")
    before = audit_rows(db)
    for url in ("/logout", "/admin/users/coord_gla/password", "/admin/users/coord_gla/logout"):
        assert client.get(url).status_code in (404, 405)
    assert audit_rows(db) == before


def test_the_login_form_needs_its_own_csrf_cookie_and_token(client, db: Database):
    before = audit_rows(db)
    # no token
    response = client.post("/login", data={"name": "coord_gla", "password": TEST_PASSWORD})
    assert response.status_code == 403 and SESSION_COOKIE not in response.cookies
    # a token from another browser's login page (login CSRF: logging the victim in as us)
    attacker = make_client(db)
    stolen = login_form_token(attacker)
    login_form_token(client)
    response = client.post(
        "/login", data={"name": "coord_gla", "password": TEST_PASSWORD, "csrf_token": stolen}
    )
    assert response.status_code == 403 and SESSION_COOKIE not in response.cookies
    # the cookie without the form field
    response = client.post("/login", data={"name": "coord_gla", "password": TEST_PASSWORD})
    assert response.status_code == 403
    assert audit_rows(db) == before
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(WebSession)) == 0


# --------------------------------------------------------------------------- sessions


def test_the_session_id_is_new_after_login_and_a_planted_one_is_not_kept(client, db: Database):
    plant(client, "planted-by-the-attacker")
    login(client, "coord_gla")
    token = client.cookies.get(SESSION_COOKIE)
    assert token != "planted-by-the-attacker" and len(token) >= 40
    # a real session planted before login (the attacker's own) ends at the victim's login
    attacker = make_client(db)
    login(attacker, "coord_cro")
    attackers = attacker.cookies.get(SESSION_COOKIE)
    victim = make_client(db)
    plant(victim, attackers)
    login(victim, "coord_gla")
    assert victim.cookies.get(SESSION_COOKIE) != attackers
    with pytest.raises(auth.SessionInvalid):
        auth.session_for(db, attackers)
    # logging in twice gives two different ids
    again = make_client(db)
    login(again, "coord_gla")
    assert again.cookies.get(SESSION_COOKIE) != token
    # only a hash of the id is stored
    with db.read() as s:
        stored = set(s.scalars(select(WebSession.token_hash)))
    assert token not in stored and auth.token_hash(token) in stored


def test_logout_ends_the_session_on_the_server(client, db: Database):
    login(client, "coord_gla")
    token = client.cookies.get(SESSION_COOKIE)
    form_token = csrf(client)
    response = post(client, "/logout")
    assert response.status_code == 303
    # replaying the old cookie (and its CSRF token) fails
    replay = make_client(db)
    plant(replay, token)
    assert replay.get("/").status_code == 303
    refused = replay.post("/password", data={"csrf_token": form_token})
    assert refused.status_code == 403
    with pytest.raises(auth.SessionInvalid):
        auth.session_for(db, token)
    with db.read() as s:
        assert "logout" in s.scalars(select(AuthEvent.kind)).all()


def age_session(db: Database, token: str, by: timedelta) -> None:
    """Move a session's times back by ``by``, as if that much time had passed."""
    where = WebSession.token_hash == auth.token_hash(token)
    with db.read() as s:
        row = s.scalar(select(WebSession).where(where))
        times = (row.created_at, row.last_seen_at, row.expires_at)
    with db.engine.begin() as conn:
        conn.execute(
            update(WebSession)
            .where(where)
            .values(created_at=times[0] - by, last_seen_at=times[1] - by, expires_at=times[2] - by)
        )


def test_idle_timeout(db: Database):
    give_passwords(db)
    client = make_client(db, WebSettings(idle_timeout=timedelta(minutes=10)))
    login(client, "coord_gla")
    token = client.cookies.get(SESSION_COOKIE)
    age_session(db, token, timedelta(minutes=9))
    assert client.get("/").status_code == 200  # used: idle time starts again
    age_session(db, token, timedelta(minutes=9))
    assert client.get("/").status_code == 200
    age_session(db, token, timedelta(minutes=10, seconds=1))
    response = client.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    # the default: 30 minutes (the service with explicit times)
    now = utcnow()
    outcome = auth.log_in(db, "coord_cro", TEST_PASSWORD, now=now)
    auth.session_for(db, outcome.token, now=now + timedelta(minutes=29))
    auth.session_for(db, outcome.token, now=now + timedelta(minutes=58))
    with pytest.raises(auth.SessionInvalid, match="expired"):
        auth.session_for(db, outcome.token, now=now + timedelta(minutes=89))
    with db.read() as s:
        assert "session_expired" in s.scalars(select(AuthEvent.kind)).all()


def test_absolute_timeout(db: Database):
    give_passwords(db)
    settings = WebSettings(absolute_timeout=timedelta(hours=2), idle_timeout=timedelta(hours=1))
    client = make_client(db, settings)
    login(client, "coord_gla")
    token = client.cookies.get(SESSION_COOKIE)
    with db.read() as s:
        row = s.scalar(select(WebSession).where(WebSession.token_hash == auth.token_hash(token)))
        assert row.expires_at - row.created_at == timedelta(hours=2)
    for i in range(3):  # used every 35 minutes ...
        age_session(db, token, timedelta(minutes=35))
        assert client.get("/").status_code == 200, i
    age_session(db, token, timedelta(minutes=16))  # ... it still ends 2 hours after login
    assert client.get("/").status_code == 303
    # the default: used every 20 minutes, a session ends 12 hours after login
    now = utcnow()
    outcome = auth.log_in(db, "coord_cro", TEST_PASSWORD, now=now)
    at = now
    while at < now + auth.ABSOLUTE_TIMEOUT - timedelta(minutes=20):
        at += timedelta(minutes=20)
        auth.session_for(db, outcome.token, now=at)
    with pytest.raises(auth.SessionInvalid, match="expired"):
        auth.session_for(db, outcome.token, now=now + auth.ABSOLUTE_TIMEOUT)


def test_a_deactivated_users_live_session_stops_working(client, db: Database):
    login(client, "coord_cro")
    token = csrf(client)
    assert client.get("/").status_code == 200
    admin = users.resolve_actor(db, "admin")
    users.update_user(db, admin, "coord_cro", "left the trial", active=False)
    assert client.get("/").status_code == 303
    # a form sent with the session's (still right) CSRF token: refused
    assert client.post("/password", data={"csrf_token": token}).status_code == 403
    assert live_sessions(db, "coord_cro") == 0


def test_a_one_time_password_must_be_changed_before_any_other_page(client, db: Database):
    admin = users.resolve_actor(db, "admin")
    auth.set_password(db, admin, "datamanager", "given by the administrator")
    login(client, "datamanager", "given by the administrator")
    for url in ("/", "/admin/users", "/second-factor?x=1"):
        response = client.get(url)
        if url.startswith("/second-factor"):
            continue  # the second-factor page is allowed (it comes first when owed)
        assert response.headers["location"] == "/password", url
    before = audit_rows(db)
    token = csrf(client)
    response = client.post("/admin/users/new", data={"csrf_token": token, "name": "x1"})
    assert response.status_code == 303 and response.headers["location"] == "/password"
    assert audit_rows(db) == before
    # the policy applies to the new password
    weak = post(
        client,
        "/password",
        {"current_password": "given by the administrator", "new_password": "passwordpassword",
         "repeat_password": "passwordpassword"},
    )  # fmt: skip
    assert weak.status_code == 422 and "PWD-003" in weak.text
    done = post(
        client,
        "/password",
        {"current_password": "given by the administrator", "new_password": NEW_PASSWORD,
         "repeat_password": NEW_PASSWORD},
    )  # fmt: skip
    assert done.status_code == 303
    assert client.get("/").status_code == 200


# --------------------------------------------------------------------------- lockout


def test_lock_delay_doubles_from_one_minute_up_to_a_day():
    assert auth.lock_delay(4) is None
    assert auth.lock_delay(5) == timedelta(minutes=1)
    assert auth.lock_delay(6) == timedelta(minutes=2)
    assert auth.lock_delay(7) == timedelta(minutes=4)
    assert auth.lock_delay(40) == timedelta(days=1)


def test_lockout_locks_refuses_the_right_password_doubles_and_is_cleared_by_a_reset(
    client, db: Database
):
    for i in range(auth.LOCKOUT_AFTER):
        response = try_login(client, "coord_gla", f"wrong guess {i}")
        assert response.status_code == 401
    # locked: the right password is refused too, with the same status
    response = try_login(client, "coord_gla", TEST_PASSWORD)
    assert response.status_code == 401 and "locked" in response.text
    assert SESSION_COOKIE not in response.cookies
    with db.read() as s:
        user_id = s.scalar(select(User.id).where(User.name == "coord_gla"))
        cred = s.get(UserCredential, user_id)
        first = cred.locked_until
        assert cred.failed_count == 5 and first is not None
    # the delay doubles: after the first lock ends, one more failure locks for two minutes
    later = first + timedelta(seconds=1)
    with pytest.raises(auth.LoginRefused):
        auth.log_in(db, "coord_gla", "still wrong", now=later)
    with db.read() as s:
        cred = s.get(UserCredential, user_id)
        assert cred.failed_count == 6
        assert cred.locked_until - later == timedelta(minutes=2)
        later2 = cred.locked_until + timedelta(seconds=1)
    with pytest.raises(auth.LoginRefused):
        auth.log_in(db, "coord_gla", "wrong again", now=later2)
    with db.read() as s:
        assert s.get(UserCredential, user_id).locked_until - later2 == timedelta(minutes=4)
    # audited: failures and lockouts, in the hash chain
    with db.read() as s:
        kinds = list(s.scalars(select(AuthEvent.kind).where(AuthEvent.user_id == user_id)))
        audited = s.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.table_name == "auth_events")
        )
    assert kinds.count("lockout") == 3 and kinds.count("login_failed") >= 8
    assert audited >= len(kinds)
    # an administrator's reset clears it
    admin = users.resolve_actor(db, "admin")
    password = auth.reset_password(db, admin, "coord_gla")
    fresh = make_client(db)
    login(fresh, "coord_gla", password)
    with db.read() as s:
        cred = s.get(UserCredential, user_id)
        assert cred.failed_count == 0 and cred.locked_until is None


def test_a_successful_login_resets_the_count(client, db: Database):
    for i in range(auth.LOCKOUT_AFTER - 1):
        try_login(client, "coord_gla", f"typo {i}")
    login(client, "coord_gla")
    for i in range(auth.LOCKOUT_AFTER - 1):
        try_login(make_client(db), "coord_gla", f"typo again {i}")
    login(make_client(db), "coord_gla")


# --------------------------------------------------------------------------- hashes, cookies, headers


def test_hashes_are_argon2id_with_strong_parameters(db: Database, strong_password_hashes: None):
    from argon2 import extract_parameters

    admin = users.resolve_actor(db, "admin")
    auth.set_password(db, admin, "statistician", "a fresh passphrase here")
    with db.read() as s:
        user_id = s.scalar(select(User.id).where(User.name == "statistician"))
        stored = s.get(UserCredential, user_id).password_hash
    assert stored.startswith("$argon2id$v=19$")
    params = extract_parameters(stored)
    assert params.type.name == "ID"
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2  # OWASP minimums
    assert params.salt_len >= 16 and params.hash_len >= 32
    # salted: the same password twice gives two hashes
    assert auth.hash_password("same password!") != auth.hash_password("same password!")


def _cookie_headers(response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def test_cookie_flags_on_loopback(client):
    page = client.get("/login")
    login_cookie = _cookie_headers(page)[LOGIN_CSRF_COOKIE]
    assert "HttpOnly" in login_cookie and "samesite=strict" in login_cookie.lower()
    assert "Secure" not in login_cookie
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/login", data={"name": "coord_gla", "password": TEST_PASSWORD, "csrf_token": token}
    )
    cookie = _cookie_headers(response)[SESSION_COOKIE]
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
    assert "Secure" not in cookie  # http://127.0.0.1 while testing


def test_cookie_flags_on_a_public_host_are_secure(app):
    with TestClient(app, base_url="https://noim.example.org", follow_redirects=False) as c:
        page = c.get("/login")
        assert "Secure" in _cookie_headers(page)[LOGIN_CSRF_COOKIE]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        response = c.post(
            "/login", data={"name": "coord_gla", "password": TEST_PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 303
        cookie = _cookie_headers(response)[SESSION_COOKIE]
        assert "Secure" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()


def test_security_headers_on_every_kind_of_page(client):
    pages = [client.get("/login"), client.get("/nowhere")]
    login(client, "admin")
    pages += [client.get("/"), client.get("/admin/users"), client.get("/admin/users/nobody")]
    for response in pages:
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert CSP == (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    assert "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    for response in pages:  # nothing inline that the CSP would have to allow
        assert "<script>" not in response.text and " style=" not in response.text
        assert " onclick=" not in response.text


# --------------------------------------------------------------------------- the acting user


def test_the_acting_user_cannot_be_chosen(client, db: Database, monkeypatch):
    monkeypatch.setenv("NOIM_USER", "admin")
    login(client, "coord_gla")
    client.cookies.set("admin", "1")
    client.cookies.set("noim_user", "admin")
    client.cookies.set("user", "admin")
    page = client.get("/?user=admin", headers={"X-Noim-User": "admin", "X-Remote-User": "admin"})
    assert page.status_code == 200
    assert '<span class="user">coord_gla</span>' in page.text
    assert client.get("/admin/users", headers={"X-Noim-User": "admin"}).status_code == 403
    before = audit_rows(db)
    response = post(
        client,
        "/admin/users/new",
        {"name": "mallory", "role": "administrator", "user": "admin", "actor": "admin"},
        headers={"X-Noim-User": "admin"},
    )
    assert response.status_code == 403
    assert audit_rows(db) == before
    # without a session, no header, cookie or variable makes anyone act
    anonymous = make_client(db)
    anonymous.cookies.set("noim_user", "admin")
    response = anonymous.get("/admin/users", headers={"X-Noim-User": "admin"})
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    # the session's own user logs out; the administrator (named in every way) stays
    other = make_client(db)
    login(other, "admin")
    post(client, "/logout", {"user": "admin"}, headers={"X-Noim-User": "admin"})
    assert other.get("/").status_code == 200 and live_sessions(db, "coord_gla") == 0


def test_next_cannot_lead_off_site(client):
    for target in (
        "//evil.example",
        "https://evil.example",
        "http://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "///evil.example",
    ):
        page = client.get("/login", params={"next": target})
        assert 'name="next" value="/"' in page.text, target
        response = try_login(make_client_like(client), "coord_gla", TEST_PASSWORD, next=target)
        assert response.status_code == 303 and response.headers["location"] == "/", target
    ok = try_login(make_client_like(client), "coord_gla", TEST_PASSWORD, next="/admin/users?x=1")
    assert ok.headers["location"] == "/admin/users?x=1"


def make_client_like(client: TestClient) -> TestClient:
    return TestClient(client.app, base_url=str(client.base_url), follow_redirects=False)


def _refusal(text: str) -> str:
    found = re.search(r'<div class="error-summary".*?</div>', text, re.S)
    assert found
    return found.group(0)


def test_no_user_enumeration(client, db: Database):
    admin = users.resolve_actor(db, "admin")
    users.update_user(db, admin, "research_cro", "left", active=False)
    unknown = try_login(client, "nobody_here", "some password 1")
    wrong = try_login(client, "coord_gla", "some password 1")
    inactive = try_login(client, "research_cro", TEST_PASSWORD)
    assert unknown.status_code == wrong.status_code == inactive.status_code == 401
    assert _refusal(unknown.text) == _refusal(wrong.text) == _refusal(inactive.text)
    assert SESSION_COOKIE not in unknown.cookies


# --------------------------------------------------------------------------- secrets never shown


def test_no_password_or_hash_in_responses_audit_trail_or_logs(client, db: Database, caplog):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    seen.append(try_login(client, "coord_gla", "a wrong password here").text)
    login(client, "coord_gla")
    seen.append(client.get("/").text)
    seen.append(client.get("/password").text)
    response = post(
        client,
        "/password",
        {"current_password": TEST_PASSWORD, "new_password": "short",
         "repeat_password": "short"},
    )  # fmt: skip
    seen.append(response.text)
    response = post(
        client,
        "/password",
        {"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD,
         "repeat_password": NEW_PASSWORD},
    )  # fmt: skip
    seen.append(client.get("/").text)
    admin_client = make_client(db)
    login(admin_client, "admin")
    seen += [admin_client.get(u).text for u in ("/admin/users", "/admin/users/coord_gla")]
    with db.read() as s:
        hashes = list(s.scalars(select(UserCredential.password_hash)))
        audit = [repr(vars(r)) for r in s.scalars(select(AuditLog))]
        events = [repr(vars(e)) for e in s.scalars(select(AuthEvent))]
    secrets = [TEST_PASSWORD, NEW_PASSWORD, "a wrong password here", *hashes]
    blobs = {"responses": "\n".join(seen), "audit trail": "\n".join(audit + events),
             "logs": caplog.text}  # fmt: skip
    for where, blob in blobs.items():
        for secret in secrets:
            assert secret not in blob, f"a password or hash in the {where}"
        assert "$argon2" not in blob, where
