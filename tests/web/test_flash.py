"""The message shown once after a form: a cookie signed for the session, no database write."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from noim.db.models import AuditLog, WebSession
from noim.db.session import Database
from noim.services import auth
from noim.web.pages import FLASH_COOKIE, SESSION_COOKIE, flash_cookie, read_flash
from tests.web.conftest import TEST_PASSWORD, count_statements, login, post

NEW_PASSWORD = "seven tall ships sail at dawn"
SAID = "Your password was changed."


def _change_password(client):
    return post(
        client,
        "/password",
        {
            "current_password": TEST_PASSWORD,
            "new_password": NEW_PASSWORD,
            "repeat_password": NEW_PASSWORD,
        },
    )


def test_the_message_is_shown_once_and_written_nowhere(client, db: Database):
    login(client, "coord_gla")
    with db.read() as s:
        audit_rows = len(s.scalars(select(AuditLog.seq)).all())
    with count_statements(db) as seen:
        response = _change_password(client)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert FLASH_COOKIE in response.cookies
    assert not [q for q in seen if "flash" in q.lower() and q.lstrip().upper().startswith("UPDATE")]
    with db.read() as s:
        assert all(f is None for f in s.scalars(select(WebSession.flash)))
        # the password change itself is audited; nothing more for the message
        assert len(s.scalars(select(AuditLog.seq)).all()) > audit_rows
    first = client.get("/")
    assert first.status_code == 200 and SAID in first.text
    second = client.get("/")
    assert second.status_code == 200 and SAID not in second.text


def test_a_message_not_signed_for_the_session_is_not_shown(client, db: Database):
    login(client, "coord_gla")
    token = client.cookies.get(SESSION_COOKIE)
    session = auth.session_for(db, token)
    other = replace(session, csrf_token="another session's secret")
    client.cookies.set(FLASH_COOKIE, flash_cookie(other, "Forged: all saved."))
    page = client.get("/")
    assert page.status_code == 200 and "Forged" not in page.text
    for junk in ("", ".", "abc", "abc.def", "%%%.zz"):
        client.cookies.set(FLASH_COOKIE, junk)
        assert client.get("/").status_code == 200
    assert read_flash(session, flash_cookie(session, "é ✓ <b>")) == "é ✓ <b>"
    assert read_flash(other, flash_cookie(session, "x")) is None
