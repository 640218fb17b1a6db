"""Logins to the web application: credentials, server-side sessions, and the audited log of
authentication events.

Credentials and sessions change on every login and every request, and a password hash has no
place in the audit trail: those two tables are not audited row by row. What happens to them
is: every login, failed login, logout, lockout, password change and second-factor change is
an ``AuthEvent`` row, append-only and in the audit hash chain like every trial record.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from noim.db.base import Base, code_check

#: what an authentication event records
AUTH_EVENT_KINDS = (
    "login",
    "login_failed",
    "logout",
    "lockout",
    "password_set",
    "password_changed",
    "session_expired",
    "sessions_revoked",
    "second_factor_enrolled",
    "second_factor_removed",
    "second_factor_required",
    "second_factor_verified",
)


class UserCredential(Base):
    """A user's password (an Argon2id hash), its lockout state and optional TOTP secret."""

    __tablename__ = "user_credentials"
    __audited__ = False

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True, autoincrement=False
    )
    password_hash: Mapped[str] = mapped_column(Text)
    #: a one-time password set by an administrator: must be changed at the next login
    must_change: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_at: Mapped[datetime]
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the last TOTP time step accepted (a code is never accepted twice)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)


class WebSession(Base):
    """A login: kept on the server; the browser holds only a random token (its hash is here)."""

    __tablename__ = "web_sessions"
    __audited__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    #: the password was a one-time one: the session may only change it
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the second factor is still to be given (the session may only give it)
    second_factor_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    client: Mapped[str | None] = mapped_column(String(128), default=None)
    #: a one-line message shown once on the next page
    flash: Mapped[str | None] = mapped_column(Text, default=None)


class AuthEvent(Base):
    """One authentication event (append-only, audited in the hash chain)."""

    __tablename__ = "auth_events"
    __table_args__ = (code_check("kind", AUTH_EVENT_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    #: the user name as typed (a failed login may name no user)
    user_name: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True, default=None
    )
    detail: Mapped[str | None] = mapped_column(Text, default=None)
    client: Mapped[str | None] = mapped_column(String(128), default=None)


class RoleSecurity(Base):
    """Per role: whether a second factor (TOTP) is compulsory. Set by administrators."""

    __tablename__ = "role_security"

    role_code: Mapped[str] = mapped_column(
        ForeignKey("roles.code", ondelete="RESTRICT"), primary_key=True
    )
    second_factor_required: Mapped[bool] = mapped_column(Boolean, default=False)
