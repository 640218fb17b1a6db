"""The second factor (TOTP): enrolment shown as text, a code at each login, each code once,
compulsory per role, failures counting towards the lockout, removal by an administrator."""

from __future__ import annotations

import re
import time

from sqlalchemy import func, select

from noim.db.models import AuditLog, AuthEvent, User, UserCredential, WebSession
from noim.db.session import Database
from noim.domain import totp
from noim.services import auth, users
from noim.web.pages import SESSION_COOKIE
from tests.web.conftest import TEST_PASSWORD, login, login_form_token, make_client

_SECRET = re.compile(r'<p class="secret"><code>([A-Z2-7 ]+)</code></p>')
_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def token_of(page_text: str) -> str:
    found = _META.search(page_text)
    assert found
    return found.group(1)


def send_code(client, code: str):
    page = client.get("/second-factor")
    return client.post("/second-factor", data={"code": code, "csrf_token": token_of(page.text)})


def code_at(secret: str, offset_steps: int = 0) -> str:
    return totp.totp(totp.decode_secret(secret), time.time() + 30 * offset_steps)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def start(client):
    """The "Set up a second factor" button (a GET shows the button and writes nothing)."""
    page = client.get("/second-factor")
    assert page.status_code == 200 and 'name="action" value="start"' in page.text
    response = client.post(
        "/second-factor", data={"action": "start", "csrf_token": token_of(page.text)}
    )
    assert response.status_code == 200
    return response


def enrol(client) -> str:
    page = client.get("/second-factor")
    if not _SECRET.search(page.text):
        page = start(client)
    found = _SECRET.search(page.text)
    assert found, page.text[:1500]
    secret = found.group(1).replace(" ", "")
    assert "otpauth://totp/noim%3A" in page.text and f"secret={secret}" in page.text
    response = send_code(client, code_at(secret))
    assert response.status_code == 303, response.text[:1000]
    return secret


def audit_rows(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditLog)) or 0)


def cred_of(db: Database, name: str) -> UserCredential:
    with db.read() as s:
        user = s.scalar(select(User).where(User.name == name))
        cred = s.get(UserCredential, user.id)
        s.expunge(cred)
        return cred


def events(db: Database, name: str) -> list[str]:
    with db.read() as s:
        return list(
            s.scalars(
                select(AuthEvent.kind).where(AuthEvent.user_name == name).order_by(AuthEvent.id)
            )
        )


def test_optional_enrolment_then_a_code_at_every_login_each_code_once(client, db: Database):
    login(client, "coord_gla")
    before = audit_rows(db)
    client.get("/second-factor")
    assert cred_of(db, "coord_gla").totp_secret is None  # a GET writes nothing
    page = start(client)
    secret = _SECRET.search(page.text).group(1).replace(" ", "")
    assert secret in client.get("/second-factor").text.replace(" ", "")  # kept until confirmed
    assert audit_rows(db) == before  # credentials are not audited row by row
    # a wrong code: the error beside the field, nothing set up
    bad = send_code(client, wrong(code_at(secret)))
    assert bad.status_code == 422 and 'id="e-code"' in bad.text and "TFA-001" in bad.text
    assert not cred_of(db, "coord_gla").totp_enabled
    secret = enrol(client)
    cred = cred_of(db, "coord_gla")
    assert cred.totp_enabled and cred.totp_last_step is not None
    assert "set up" in client.get("/second-factor").text
    client.post("/logout", data={"csrf_token": token_of(client.get("/").text)})

    login(client, "coord_gla")
    # until the code is given, every page leads to it (the password page too)
    for url in ("/", "/password", "/admin/users"):
        assert client.get(url).headers["location"] == "/second-factor", url
    # the code just used at enrolment is refused (a code works once)
    used = code_at(secret)
    if totp.step_at(time.time()) == cred.totp_last_step:
        assert send_code(client, used).status_code == 422
    ok = send_code(client, code_at(secret, 1))
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    assert client.get("/").status_code == 200
    kinds = events(db, "coord_gla")
    assert "second_factor_enrolled" in kinds and "second_factor_verified" in kinds
    with db.read() as s:
        assert s.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.table_name == "auth_events")
        )
    # the same code again in another login: refused
    other = make_client(db)
    login(other, "coord_gla")
    assert send_code(other, code_at(secret, 1)).status_code == 422


def test_compulsory_for_a_role_enrol_before_anything_else(client, db: Database):
    admin = users.resolve_actor(db, "admin")
    auth.set_second_factor_required(db, admin, "coordinator", True)
    login(client, "coord_cro")
    assert client.get("/").headers["location"] == "/second-factor"
    page = client.get("/second-factor")
    assert "Your role needs a second factor" in page.text
    assert client.get("/password").headers["location"] == "/second-factor"
    enrol(client)
    assert client.get("/").status_code == 200
    # another role is not concerned
    other = make_client(db)
    login(other, "statistician")
    assert other.get("/").status_code == 200
    assert "second_factor_required" in events(db, "admin")


def test_one_time_password_and_second_factor_the_factor_comes_first(client, db: Database):
    login(client, "research_gla")
    secret = enrol(client)
    admin = users.resolve_actor(db, "admin")
    password = auth.reset_password(db, admin, "research_gla")
    fresh = make_client(db)
    login(fresh, "research_gla", password)
    assert fresh.get("/").headers["location"] == "/second-factor"
    assert fresh.get("/password").headers["location"] == "/second-factor"
    done = send_code(fresh, code_at(secret, 1))
    assert done.headers["location"] == "/password"
    assert fresh.get("/").headers["location"] == "/password"


def test_failed_codes_count_towards_the_lockout_even_across_logins(client, db: Database):
    login(client, "datamanager")
    secret = enrol(client)
    attacker = make_client(db)  # has the password, not the phone
    login(attacker, "datamanager")
    for _ in range(3):
        assert send_code(attacker, wrong(code_at(secret, 1))).status_code == 422
    # logging in again with the right password does not forgive the failures
    login(attacker, "datamanager")
    assert cred_of(db, "datamanager").failed_count == 3
    assert send_code(attacker, wrong(code_at(secret, 1))).status_code == 422
    locked = send_code(attacker, wrong(code_at(secret, 1)))
    assert locked.status_code == 403 and "locked" in locked.text
    assert cred_of(db, "datamanager").locked_until is not None
    # the session has ended, and the right password is refused while locked
    assert attacker.get("/").status_code == 303
    token = login_form_token(attacker)
    refused = attacker.post(
        "/login", data={"name": "datamanager", "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert refused.status_code == 401
    kinds = events(db, "datamanager")
    assert kinds.count("login_failed") >= 5 and "lockout" in kinds


def test_an_administrator_removes_a_lost_second_factor(client, db: Database):
    login(client, "unblinded_stat")
    enrol(client)
    admin_client = make_client(db)
    login(admin_client, "admin")
    page = admin_client.get("/admin/users/unblinded_stat")
    assert "Remove their second factor" in page.text
    response = admin_client.post(
        "/admin/users/unblinded_stat/second-factor", data={"csrf_token": token_of(page.text)}
    )
    assert response.status_code == 303
    assert not cred_of(db, "unblinded_stat").totp_enabled
    assert client.get("/").status_code == 303  # their sessions ended
    login(client, "unblinded_stat")
    assert client.get("/").status_code == 200  # optional for the role: no code asked
    assert "second_factor_removed" in events(db, "unblinded_stat")
    # removing again: nothing to remove, said beside the section, nothing written
    page = admin_client.get("/admin/users/unblinded_stat")
    again = admin_client.post(
        "/admin/users/unblinded_stat/second-factor", data={"csrf_token": token_of(page.text)}
    )
    assert again.status_code == 422 and "TFA-003" in again.text


def test_the_second_factor_form_needs_the_csrf_token(client, db: Database):
    login(client, "coord_gla")
    assert client.post("/second-factor", data={"action": "start"}).status_code == 403
    assert cred_of(db, "coord_gla").totp_secret is None
    page = start(client)
    secret = _SECRET.search(page.text).group(1).replace(" ", "")
    response = client.post("/second-factor", data={"code": code_at(secret)})
    assert response.status_code == 403
    assert not cred_of(db, "coord_gla").totp_enabled


def test_the_secret_is_not_in_the_audit_trail(client, db: Database):
    login(client, "coord_gla")
    secret = enrol(client)
    with db.read() as s:
        rows = s.execute(select(AuditLog)).scalars().all()
        text = " ".join(repr(vars(r)) for r in rows)
    assert secret not in text
    assert client.cookies.get(SESSION_COOKIE) not in text
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(WebSession)) >= 1
