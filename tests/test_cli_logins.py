"""The logins CLI (administrators on the server): one-time passwords, ending sessions, the
second factor per role, removing a user's second factor; a deactivated user's session ends."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from noim.db.models import RoleSecurity, User, UserCredential
from noim.db.session import Database
from noim.services import auth
from noim.web.pages import SESSION_COOKIE
from tests.test_cli import run
from tests.web.conftest import TEST_PASSWORD, give_passwords, login, make_client

_PASSWORD = re.compile(r": ([a-z2-9]{5}(?:-[a-z2-9]{5}){3})$", re.M)


def admin(db_url: str, *args: str):
    result = run("--database", db_url, "--user", "admin", *args)
    assert result.exit_code == 0, result.output + result.stderr
    return result


def test_users_add_prints_a_one_time_password_that_must_be_changed(db_url: str) -> None:
    out = admin(db_url, "users", "add", "kim", "--role", "coordinator", "--site", "GLA").output
    password = _PASSWORD.search(out).group(1)
    assert "Added kim" in out and "shown once" in out
    db = Database(db_url)
    try:
        with db.read() as s:
            user = s.scalar(select(User).where(User.name == "kim"))
            cred = s.get(UserCredential, user.id)
            assert cred.must_change and cred.password_hash.startswith("$argon2id$")
            assert password not in cred.password_hash
        client = make_client(db)
        login(client, "kim", password)
        assert client.get("/").headers["location"] == "/password"
        as_json = json.loads(
            admin(db_url, "users", "add", "lee", "--role", "statistician", "--json").output
        )
        assert as_json["name"] == "lee" and len(as_json["one_time_password"]) == 23
    finally:
        db.dispose()


def test_users_password_logout_and_refusals(db_url: str) -> None:
    db = Database(db_url)
    try:
        give_passwords(db)
        client = make_client(db)
        login(client, "coord_cro")
        assert client.get("/").status_code == 200
        out = admin(db_url, "users", "logout", "coord_cro").output
        assert "Ended 1 session(s) of coord_cro" in out
        assert client.get("/").status_code == 303
        login(client, "coord_cro")
        out = admin(db_url, "users", "password", "coord_cro").output
        password = _PASSWORD.search(out).group(1)
        assert client.get("/").status_code == 303  # a new password ends the sessions
        login(client, "coord_cro", password)
        assert client.get("/").headers["location"] == "/password"
        # the old password no longer works
        fresh = make_client(db)
        token = re.search(r'name="csrf_token" value="([^"]+)"', fresh.get("/login").text)
        refused = fresh.post(
            "/login",
            data={"name": "coord_cro", "password": TEST_PASSWORD, "csrf_token": token.group(1)},
        )
        assert refused.status_code == 401
        # nobody but an administrator
        for args in (
            ("users", "password", "coord_gla"),
            ("users", "logout", "coord_gla"),
            ("users", "second-factor", "coordinator", "--required"),
            ("users", "remove-second-factor", "coord_gla"),
        ):
            result = run("--database", db_url, "--user", "datamanager", *args)
            assert result.exit_code != 0 and "may not" in result.stderr, args
        assert run("--database", db_url, "--user", "admin", "users", "password", "ghost").exit_code
    finally:
        db.dispose()


def test_second_factor_per_role_and_removal(db_url: str) -> None:
    db = Database(db_url)
    try:
        give_passwords(db)
        admin(db_url, "users", "second-factor", "coordinator", "--required")
        with db.read() as s:
            assert s.get(RoleSecurity, "coordinator").second_factor_required
        client = make_client(db)
        login(client, "coord_gla")
        assert client.get("/").headers["location"] == "/second-factor"
        admin(db_url, "users", "second-factor", "coordinator", "--optional")
        with db.read() as s:
            assert not s.get(RoleSecurity, "coordinator").second_factor_required
        bad = run(
            "--database", db_url, "--user", "admin", "users", "second-factor", "emperor",
            "--required",
        )  # fmt: skip
        assert bad.exit_code != 0 and "USR-004" in bad.stderr
        # remove-second-factor: nothing to remove yet, then after enrolment
        none = run(
            "--database", db_url, "--user", "admin", "users", "remove-second-factor", "coord_gla"
        )
        assert none.exit_code != 0 and "TFA-003" in none.stderr
        session = auth.log_in(db, "coord_gla", TEST_PASSWORD).session
        auth.start_enrolment(db, session)
        out = admin(db_url, "users", "remove-second-factor", "coord_gla").output
        assert "Removed the second factor of coord_gla" in out
        with db.read() as s:
            user = s.scalar(select(User).where(User.name == "coord_gla"))
            cred = s.get(UserCredential, user.id)
            assert cred.totp_secret is None and not cred.totp_enabled
    finally:
        db.dispose()


def test_deactivating_a_user_ends_their_session_at_the_next_request(db_url: str) -> None:
    db = Database(db_url)
    try:
        give_passwords(db)
        client = make_client(db)
        login(client, "research_cro")
        assert client.get("/").status_code == 200
        token = client.cookies.get(SESSION_COOKIE)
        assert auth.session_for(db, token).actor.name == "research_cro"
        admin(db_url, "users", "update", "research_cro", "--inactive", "--reason", "left")
        with pytest.raises(auth.SessionInvalid, match="ended"):
            auth.session_for(db, token)
        response = client.get("/")
        assert response.status_code == 303 and response.headers["location"] == "/login"
        with pytest.raises(auth.SessionInvalid):  # and stays ended once revoked
            auth.session_for(db, token)
    finally:
        db.dispose()
