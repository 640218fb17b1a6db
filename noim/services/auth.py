"""Logging in to the web application: passwords, lockout, server-side sessions.

* Passwords are stored as Argon2id hashes (argon2-cffi, its default parameters, RFC 9106's
  second recommended option). An administrator sets a one-time password; the user must
  change it at the next login (``must_change``). The policy is ``noim.services.passwords``.
* Repeated failures lock the account: after ``LOCKOUT_AFTER`` failures in a row each further
  failure locks it for a delay that doubles (1, 2, 4 ... minutes, at most a day). While locked
  every attempt fails, even with the right password, and says so without telling whether the
  password was right.
* A session is a row of ``web_sessions``; the browser holds a random token whose SHA-256 is
  stored. A session ends when idle too long, at its absolute limit, at logout, or when an
  administrator revokes it. Every login makes a new session (so a new id).
* Every login, failed login, logout, lockout and password change is an ``AuthEvent`` row,
  audited in the hash chain.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import Session

from noim.db.base import utcnow
from noim.db.models import AuthEvent, RoleSecurity, User, UserCredential, WebSession
from noim.db.session import Database
from noim.domain import totp
from noim.domain.exceptions import NoimError, NotFound, PermissionDenied, Problem, ValidationError
from noim.domain.roles import ANONYMOUS, Actor, Capability, Role
from noim.services import passwords, users

if TYPE_CHECKING:
    from argon2 import PasswordHasher

#: failures in a row before the account locks
LOCKOUT_AFTER = 5
#: the first lock's length; each further failure doubles it, up to LOCKOUT_MAX
LOCKOUT_FIRST = timedelta(minutes=1)
LOCKOUT_MAX = timedelta(days=1)
IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)

#: what a refused login says, whatever the reason (no hint whether the user exists)
LOGIN_REFUSED = "unknown user name or wrong password"


class LoginRefused(NoimError):
    """The user name and password were not accepted (or the account is locked)."""


class SessionInvalid(NoimError):
    """No live session for this token (never was, expired, logged out or revoked)."""


@dataclass(frozen=True)
class SessionInfo:
    id: int
    actor: Actor
    csrf_token: str
    created_at: datetime
    expires_at: datetime
    must_change_password: bool
    second_factor_pending: bool
    flash: str | None = None


@dataclass(frozen=True)
class LoginOutcome:
    token: str
    session: SessionInfo


def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()  # Argon2id, RFC 9106 low-memory recommended parameters


def hash_password(password: str) -> str:
    return str(_hasher().hash(password))


def _verify(stored: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return bool(_hasher().verify(stored, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


#: a hash of a password nobody has: verified against when the user name is unknown, so a
#: refused login takes as long whether or not the user exists
_DUMMY_HASH: str | None = None


def _dummy_verify(password: str) -> None:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    _verify(_DUMMY_HASH, password)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _event(
    s: Session,
    kind: str,
    user_name: str,
    user_id: int | None,
    detail: str | None = None,
    client: str | None = None,
    now: datetime | None = None,
) -> None:
    s.add(
        AuthEvent(
            at=now or utcnow(),
            kind=kind,
            user_name=user_name[:64],
            user_id=user_id,
            detail=detail,
            client=(client or None) and client[:128],
        )
    )


def lock_delay(failures: int) -> timedelta | None:
    """How long the account locks after ``failures`` failures in a row (None: not locked)."""
    if failures < LOCKOUT_AFTER:
        return None
    delay: timedelta = LOCKOUT_FIRST * (2 ** min(failures - LOCKOUT_AFTER, 20))
    return delay if delay < LOCKOUT_MAX else LOCKOUT_MAX


def second_factor_required(s: Session, role_code: str) -> bool:
    row = s.get(RoleSecurity, role_code)
    return bool(row is not None and row.second_factor_required)


def log_in(
    db: Database,
    name: str,
    password: str,
    *,
    client: str | None = None,
    absolute_timeout: timedelta = ABSOLUTE_TIMEOUT,
    now: datetime | None = None,
) -> LoginOutcome:
    """Check ``name`` and ``password``; on success open a new session and return its token.

    Raises ``LoginRefused`` (with the same message whatever went wrong) otherwise; the
    failure is audited and counts towards the lockout.
    """
    now = now or utcnow()
    name = (name or "").strip()
    with db.read() as s:
        user = s.scalar(select(User).where(User.name == name)) if name else None
        cred = s.get(UserCredential, user.id) if user is not None else None
        _detach(s, user, cred)
    if user is None or cred is None or not user.active:
        _dummy_verify(password)
        with db.write(_actor_for(db, user), reason="failed login") as s:
            detail = (
                "unknown user name"
                if user is None
                else ("no password set" if cred is None else "user deactivated")
            )
            _event(s, "login_failed", name, user.id if user else None, detail, client, now)
        raise LoginRefused(LOGIN_REFUSED)
    if cred.locked_until is not None and cred.locked_until > now:
        with db.write(_actor_for(db, user), reason="failed login") as s:
            _event(s, "login_failed", name, user.id, "account locked", client, now)
        raise LoginRefused(
            f"{LOGIN_REFUSED}, or the account is locked after repeated failures: try again "
            f"after {cred.locked_until:%H:%M} UTC or ask an administrator"
        )
    ok = _verify(cred.password_hash, password)
    actor = _actor_for(db, user)
    if not ok:
        with db.write(actor, reason="failed login") as s:
            failures = cred.failed_count + 1
            delay = lock_delay(failures)
            s.execute(
                update(UserCredential)
                .where(UserCredential.user_id == user.id)
                .values(failed_count=failures, locked_until=now + delay if delay else None)
            )
            _event(s, "login_failed", name, user.id, "wrong password", client, now)
            if delay:
                _event(s, "lockout", name, user.id, f"locked for {delay}", client, now)
        raise LoginRefused(LOGIN_REFUSED)
    token = secrets.token_urlsafe(32)
    with db.write(actor, reason="login") as s:
        totp_pending = bool(cred.totp_enabled) or second_factor_required(s, user.role_code)
        if not totp_pending:
            # the failures are forgiven only when the whole login is done: with a second
            # factor still to give, a right password must not reset the count (else codes
            # could be guessed without end, logging in again every four tries)
            s.execute(
                update(UserCredential)
                .where(UserCredential.user_id == user.id)
                .values(failed_count=0, locked_until=None)
            )
        row = WebSession(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + absolute_timeout,
            must_change_password=bool(cred.must_change),
            second_factor_pending=totp_pending,
            client=(client or None) and client[:128],
        )
        s.add(row)
        _event(s, "login", name, user.id, None, client, now)
        s.flush()
        info = _info(row, actor)
    return LoginOutcome(token=token, session=info)


def _detach(s: Session, *objects: object) -> None:
    """Keep what was read after the read-only unit of work ends (its rollback expires it)."""
    for obj in objects:
        if obj is not None:
            s.expunge(obj)


def _actor_for(db: Database, user: User | None) -> Actor:
    if user is None or not user.active:
        return ANONYMOUS
    return users.resolve_actor(db, user.name)


def _info(row: WebSession, actor: Actor) -> SessionInfo:
    return SessionInfo(
        id=row.id,
        actor=actor,
        csrf_token=row.csrf_token,
        created_at=row.created_at,
        expires_at=row.expires_at,
        must_change_password=row.must_change_password,
        second_factor_pending=row.second_factor_pending,
        flash=row.flash,
    )


@functools.cache
def _session_and_user() -> Select[WebSession, User]:
    """The session of a token's hash and its user (built once: every request runs it)."""
    return (
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == bindparam("token_hash"))
    )


def session_for(
    db: Database,
    token: str | None,
    *,
    idle_timeout: timedelta = IDLE_TIMEOUT,
    now: datetime | None = None,
) -> SessionInfo:
    """The live session of ``token``, its last-seen time moved on; ``SessionInvalid`` else.

    The acting user is read afresh from the users table: a deactivated user, or one whose
    role or sites changed, acts from the next request on with what is stored now.
    """
    if not token:
        raise SessionInvalid("not logged in")
    now = now or utcnow()
    digest = token_hash(token)
    actor: Actor | None = None
    with db.read() as s:  # the session, its user and the user's sites: one unit of work
        found = s.execute(_session_and_user(), {"token_hash": digest}).one_or_none()
        if found is not None:
            if found[1].active:
                actor = users.actor_of(s, found[1])
            _detach(s, *found)
    if found is None:
        raise SessionInvalid("not logged in")
    row, user = found
    if row.revoked_at is not None:
        raise SessionInvalid("the session has ended: log in again")
    expired = row.expires_at <= now or row.last_seen_at + idle_timeout <= now
    if expired or not user.active:
        why = "expired" if expired else "user deactivated"
        with db.write(_actor_for(db, user if user.active else None), reason="session ended") as s:
            s.execute(
                update(WebSession)
                .where(WebSession.id == row.id, WebSession.revoked_at.is_(None))
                .values(revoked_at=now, revoked_reason=why)
            )
            if expired:
                _event(s, "session_expired", user.name, user.id, None, None, now)
        raise SessionInvalid(f"the session has {'expired' if expired else 'ended'}: log in again")
    assert actor is not None  # the user is active
    if (now - row.last_seen_at) > timedelta(seconds=30) or row.flash is not None:
        # moved on at most every 30 s (a page's several requests write once), and the flash
        # message is shown once
        with db.engine.begin() as conn:
            conn.execute(
                update(WebSession)
                .where(WebSession.id == row.id)
                .values(last_seen_at=now, flash=None)
            )
    return _info(row, actor)


def set_flash(db: Database, session_id: int, message: str) -> None:
    """A one-line message shown once on the session's next page (not trial data: no audit)."""
    with db.engine.begin() as conn:
        conn.execute(
            update(WebSession).where(WebSession.id == session_id).values(flash=message[:500])
        )


def log_out(db: Database, token: str | None, *, now: datetime | None = None) -> None:
    """End the session of ``token`` (nothing happens for an unknown token)."""
    if not token:
        return
    now = now or utcnow()
    with db.read() as s:
        found = s.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == token_hash(token), WebSession.revoked_at.is_(None))
        ).one_or_none()
        if found is not None:
            _detach(s, *found)
    if found is None:
        return
    row, user = found
    with db.write(_actor_for(db, user), reason="logout") as s:
        s.execute(
            update(WebSession)
            .where(WebSession.id == row.id)
            .values(revoked_at=now, revoked_reason="logout")
        )
        _event(s, "logout", user.name, user.id, None, None, now)


def revoke_sessions(
    db: Database, actor: Actor, name: str, *, reason: str = "revoked", now: datetime | None = None
) -> int:
    """End every live session of user ``name`` (administrators; or the user themself)."""
    if actor.name != name:
        actor.require(Capability.MANAGE_USERS, "end other users' sessions")
    now = now or utcnow()
    with db.write(actor, reason=reason) as s:
        user = _user(s, name)
        result = s.execute(
            update(WebSession)
            .where(WebSession.user_id == user.id, WebSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason[:64])
        )
        count = int(getattr(result, "rowcount", 0) or 0)
        _event(s, "sessions_revoked", name, user.id, f"{count} session(s): {reason}", None, now)
    return count


def _user(s: Session, name: str) -> User:
    user = s.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no noim user {name!r}; `noim users list` shows who there is")
    return user


def set_password(
    db: Database,
    actor: Actor,
    name: str,
    password: str,
    *,
    one_time: bool = True,
    now: datetime | None = None,
) -> None:
    """An administrator sets ``name``'s password (one-time: changed at the next login).

    Every live session of the user ends; the lockout is cleared.
    """
    actor.require(Capability.MANAGE_USERS, "set passwords")
    passwords.require_acceptable(name, password)
    now = now or utcnow()
    with db.write(actor, reason="password set by an administrator") as s:
        user = _user(s, name)
        _store(s, user, password, must_change=one_time, now=now)
        s.execute(
            update(WebSession)
            .where(WebSession.user_id == user.id, WebSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason="password set")
        )
        detail = "one-time password" if one_time else "password"
        _event(s, "password_set", name, user.id, f"{detail} set by {actor.name}", None, now)


def _store(s: Session, user: User, password: str, *, must_change: bool, now: datetime) -> None:
    cred = s.get(UserCredential, user.id)
    digest = hash_password(password)
    if cred is None:
        s.add(
            UserCredential(
                user_id=user.id,
                password_hash=digest,
                must_change=must_change,
                changed_at=now,
                failed_count=0,
                totp_enabled=False,
            )
        )
    else:
        cred.password_hash = digest
        cred.must_change = must_change
        cred.changed_at = now
        cred.failed_count = 0
        cred.locked_until = None


def change_password(
    db: Database,
    session: SessionInfo,
    current: str,
    new: str,
    *,
    now: datetime | None = None,
) -> None:
    """The session's user changes their own password (the current one is asked again).

    The session goes on (no longer restricted to changing the password); every other
    session of the user ends.
    """
    actor = session.actor
    now = now or utcnow()
    if session.second_factor_pending:
        raise PermissionDenied("give your second factor (the code from your app) first")
    with db.read() as s:
        user = _user(s, actor.name)
        cred = s.get(UserCredential, user.id)
        _detach(s, user, cred)
    if cred is None or not _verify(cred.password_hash, current):
        raise ValidationError(
            Problem(
                f"user {actor.name}",
                "current_password",
                "(hidden)",
                "PWD-005",
                "your current password",
            )
        )
    if _verify(cred.password_hash, new):
        raise ValidationError(
            Problem(
                f"user {actor.name}",
                "new_password",
                "(hidden)",
                "PWD-004",
                "a new password, not the one you have now",
            )
        )
    passwords.require_acceptable(actor.name, new, field="new_password")
    with db.write(actor, reason="password changed") as s:
        _store(s, user, new, must_change=False, now=now)
        s.execute(
            update(WebSession)
            .where(
                WebSession.user_id == user.id,
                WebSession.revoked_at.is_(None),
                WebSession.id != session.id,
            )
            .values(revoked_at=now, revoked_reason="password changed")
        )
        s.execute(
            update(WebSession).where(WebSession.id == session.id).values(must_change_password=False)
        )
        _event(s, "password_changed", actor.name, user.id, None, None, now)


def require_not_pending(session: SessionInfo) -> None:
    if session.must_change_password or session.second_factor_pending:
        raise PermissionDenied("finish logging in first")


# --------------------------------------------------------------------------- one-time passwords

#: letters and digits nobody confuses when reading them aloud or off a screen (no 0/O, 1/l/I)
_OTP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def generate_password(name: str) -> str:
    """A random one-time password for user ``name``: four groups of five (about 99 bits),
    e.g. ``k7mpq-2xrta-...``; always meets the policy."""
    while True:
        groups = ["".join(secrets.choice(_OTP_ALPHABET) for _ in range(5)) for _ in range(4)]
        password = "-".join(groups)
        if not passwords.problems(name, password):
            return password


def add_user(
    db: Database,
    actor: Actor,
    name: str,
    role: str | Role,
    sites: Sequence[str] = (),
    display_name: str | None = None,
    *,
    now: datetime | None = None,
) -> tuple[users.UserInfo, str]:
    """Add user ``name`` with a generated one-time password (returned, to be shown once).

    One unit of work: the user, their sites and their credential, or nothing."""
    now = now or utcnow()
    with db.write(actor, reason="user added") as s:
        user = users.create_user(s, actor, name, role, sites, display_name)
        password = generate_password(name)
        _store(s, user, password, must_change=True, now=now)
        _event(
            s, "password_set", name, user.id, f"one-time password set by {actor.name}", None, now
        )
        return users.info_of(s, user), password


def reset_password(db: Database, actor: Actor, name: str, *, now: datetime | None = None) -> str:
    """An administrator gives ``name`` a new generated one-time password (returned).

    As ``set_password``: every session of the user ends and the lockout is cleared."""
    password = generate_password(name)
    set_password(db, actor, name, password, one_time=True, now=now)
    return password


# --------------------------------------------------------------------------- second factor


@dataclass(frozen=True)
class Enrolment:
    """A second factor being set up: the secret to type into the app, and its URI."""

    secret: str
    uri: str

    @property
    def grouped(self) -> str:
        return totp.grouped(self.secret)


def second_factor_state(db: Database, session: SessionInfo) -> bool:
    """Whether the session's user has a second factor set up (enrolled and confirmed)."""
    with db.read() as s:
        cred = s.get(UserCredential, session.actor.user_id)
        return bool(cred is not None and cred.totp_enabled)


def pending_enrolment(db: Database, session: SessionInfo) -> Enrolment | None:
    """The secret being set up (made by ``start_enrolment``, not yet confirmed), if any."""
    actor = session.actor
    with db.read() as s:
        cred = s.get(UserCredential, actor.user_id)
        if cred is None or cred.totp_enabled or not cred.totp_secret:
            return None
        return Enrolment(cred.totp_secret, totp.provisioning_uri(cred.totp_secret, actor.name))


def start_enrolment(db: Database, session: SessionInfo) -> Enrolment:
    """The secret the session's user is to put into their authenticator app.

    Made once and kept (not yet in use) until confirmed with a code, so reloading the page
    shows the same one. Refused when a second factor is already set up."""
    actor = session.actor
    with db.write(actor, reason="second factor being set up") as s:
        cred = s.get(UserCredential, actor.user_id)
        if cred is None:
            raise NotFound(f"user {actor.name} has no password set")
        if cred.totp_enabled:
            raise ValidationError(
                Problem(
                    f"user {actor.name}",
                    "second_factor",
                    "(set up)",
                    "TFA-002",
                    "no second factor yet: ask an administrator to remove the old one first",
                )
            )
        if not cred.totp_secret:
            cred.totp_secret = totp.new_secret()
            cred.totp_last_step = None
        secret = cred.totp_secret
    return Enrolment(secret, totp.provisioning_uri(secret, actor.name))


def _code_problem(name: str, field: str = "code") -> ValidationError:
    return ValidationError(
        Problem(
            f"user {name}",
            field,
            "(hidden)",
            "TFA-001",
            "the 6-digit code your authenticator app shows now (each code works once)",
        )
    )


def confirm_enrolment(
    db: Database, session: SessionInfo, code: str, *, now: datetime | None = None
) -> None:
    """The user proves the app holds the secret: the second factor is then in use, and the
    session no longer owes one."""
    actor = session.actor
    now = now or utcnow()
    with db.write(actor, reason="second factor set up") as s:
        cred = s.get(UserCredential, actor.user_id)
        if cred is None or not cred.totp_secret or cred.totp_enabled:
            raise _code_problem(actor.name)
        step = totp.verify(cred.totp_secret, code, now, cred.totp_last_step)
        if step is None:
            raise _code_problem(actor.name)
        cred.totp_enabled = True
        cred.totp_last_step = step
        cred.failed_count = 0
        cred.locked_until = None
        s.execute(
            update(WebSession)
            .where(WebSession.id == session.id)
            .values(second_factor_pending=False)
        )
        _event(s, "second_factor_enrolled", actor.name, actor.user_id, None, None, now)


def verify_second_factor(
    db: Database,
    session: SessionInfo,
    code: str,
    *,
    client: str | None = None,
    now: datetime | None = None,
) -> None:
    """At login: the code from the user's app. Right, the session is complete; wrong, the
    failure counts towards the lockout like a wrong password (a lockout ends the session)."""
    actor = session.actor
    now = now or utcnow()
    with db.read() as s:
        cred = s.get(UserCredential, actor.user_id)
        _detach(s, cred)
    if cred is None or not cred.totp_enabled or not cred.totp_secret:
        raise _code_problem(actor.name)
    if cred.locked_until is not None and cred.locked_until > now:
        with db.write(actor, reason="failed login") as s:
            _end_session(s, session.id, "account locked", now)
            _event(s, "login_failed", actor.name, actor.user_id, "account locked", client, now)
        raise LoginRefused(
            f"the account is locked after repeated failures: try again after "
            f"{cred.locked_until:%H:%M} UTC or ask an administrator"
        )
    step = totp.verify(cred.totp_secret, code, now, cred.totp_last_step)
    if step is None:
        with db.write(actor, reason="failed login") as s:
            failures = cred.failed_count + 1
            delay = lock_delay(failures)
            s.execute(
                update(UserCredential)
                .where(UserCredential.user_id == actor.user_id)
                .values(failed_count=failures, locked_until=now + delay if delay else None)
            )
            _event(
                s,
                "login_failed",
                actor.name,
                actor.user_id,
                "wrong second-factor code",
                client,
                now,
            )
            if delay:
                _event(s, "lockout", actor.name, actor.user_id, f"locked for {delay}", client, now)
                _end_session(s, session.id, "account locked", now)
        if delay:
            raise LoginRefused(
                "the account is locked after repeated failures: log in again later "
                "or ask an administrator"
            )
        raise _code_problem(actor.name)
    with db.write(actor, reason="login") as s:
        s.execute(
            update(UserCredential)
            .where(UserCredential.user_id == actor.user_id)
            .values(totp_last_step=step, failed_count=0, locked_until=None)
        )
        s.execute(
            update(WebSession)
            .where(WebSession.id == session.id)
            .values(second_factor_pending=False)
        )
        _event(s, "second_factor_verified", actor.name, actor.user_id, None, client, now)


def _end_session(s: Session, session_id: int, why: str, now: datetime) -> None:
    s.execute(
        update(WebSession)
        .where(WebSession.id == session_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=why[:64])
    )


def remove_second_factor(
    db: Database, actor: Actor, name: str, *, now: datetime | None = None
) -> None:
    """An administrator removes ``name``'s second factor (a lost phone). Their sessions end;
    if their role requires one, they set up a new one at their next login."""
    actor.require(Capability.MANAGE_USERS, "remove second factors")
    now = now or utcnow()
    with db.write(actor, reason="second factor removed") as s:
        user = _user(s, name)
        cred = s.get(UserCredential, user.id)
        if cred is None or not (cred.totp_enabled or cred.totp_secret):
            raise ValidationError(
                Problem(
                    f"user {name}",
                    "second_factor",
                    "(none)",
                    "TFA-003",
                    "a user who has a second factor, to remove it",
                )
            )
        cred.totp_secret = None
        cred.totp_enabled = False
        cred.totp_last_step = None
        s.execute(
            update(WebSession)
            .where(WebSession.user_id == user.id, WebSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason="second factor removed")
        )
        _event(s, "second_factor_removed", name, user.id, f"by {actor.name}", None, now)


def set_second_factor_required(
    db: Database, actor: Actor, role: str | Role, required: bool, *, now: datetime | None = None
) -> None:
    """Administrators: whether users of ``role`` must give a second factor at login (those
    without one set it up at their next login; live sessions go on until they end)."""
    actor.require(Capability.MANAGE_USERS, "set the second-factor rule of a role")
    code = role.value if isinstance(role, Role) else role
    if code not in {r.value for r in Role}:
        allowed = ", ".join(r.value for r in Role)
        raise ValidationError(Problem("role", "role", code, "USR-004", f"one of {allowed}"))
    now = now or utcnow()
    with db.write(actor, reason="second-factor rule of a role changed") as s:
        row = s.get(RoleSecurity, code)
        if row is None:
            s.add(RoleSecurity(role_code=code, second_factor_required=required))
        else:
            row.second_factor_required = required
        detail = f"role {code}: {'required' if required else 'optional'}"
        _event(s, "second_factor_required", actor.name, actor.user_id, detail, None, now)


def roles_requiring_second_factor(db: Database) -> frozenset[str]:
    with db.read() as s:
        return frozenset(
            s.scalars(select(RoleSecurity.role_code).where(RoleSecurity.second_factor_required))
        )


# --------------------------------------------------------------------------- administrators' view


@dataclass(frozen=True)
class LoginInfo:
    """A user as the administrators' pages show them."""

    name: str
    display_name: str | None
    role: str
    sites: tuple[str, ...]
    active: bool
    has_password: bool
    must_change: bool
    second_factor: bool
    second_factor_required: bool
    last_login: datetime | None
    failed_count: int
    locked_until: datetime | None
    live_sessions: int

    def locked(self, now: datetime | None = None) -> bool:
        return self.locked_until is not None and self.locked_until > (now or utcnow())


def list_logins(db: Database, actor: Actor, name: str | None = None) -> list[LoginInfo]:
    """Every user with their login state (administrators); ``name``: just that user.

    A fixed number of queries whatever the number of users."""
    from sqlalchemy import func

    from noim.db.models import Site, UserSite

    actor.require(Capability.MANAGE_USERS, "see users' logins")
    now = utcnow()
    with db.read(actor) as s:
        stmt = select(User).order_by(User.name)
        if name is not None:
            stmt = stmt.where(User.name == name)
        people = list(s.scalars(stmt))
        if name is not None and not people:
            raise NotFound(f"no noim user {name!r}; the list of users is at /admin/users")
        ids = [u.id for u in people]
        sites: dict[int, list[str]] = {}
        for uid, code in s.execute(
            select(UserSite.user_id, Site.code)
            .join(Site, Site.id == UserSite.site_id)
            .where(UserSite.voided_at.is_(None), UserSite.user_id.in_(ids))
            .order_by(Site.code)
        ):
            sites.setdefault(uid, []).append(code)
        creds = {
            c.user_id: c
            for c in s.scalars(select(UserCredential).where(UserCredential.user_id.in_(ids)))
        }
        # (.all(): a Result has keys() of its own, which dict() would take for a mapping's)
        last: dict[int | None, datetime] = dict(
            s.execute(
                select(AuthEvent.user_id, func.max(AuthEvent.at))
                .where(AuthEvent.kind == "login", AuthEvent.user_id.in_(ids))
                .group_by(AuthEvent.user_id)
            ).all()
        )
        live: dict[int, int] = dict(
            s.execute(
                select(WebSession.user_id, func.count())
                .where(
                    WebSession.user_id.in_(ids),
                    WebSession.revoked_at.is_(None),
                    WebSession.expires_at > now,
                )
                .group_by(WebSession.user_id)
            ).all()
        )
        required = set(
            s.scalars(select(RoleSecurity.role_code).where(RoleSecurity.second_factor_required))
        )
        out = []
        for u in people:
            c = creds.get(u.id)
            out.append(
                LoginInfo(
                    name=u.name,
                    display_name=u.display_name,
                    role=u.role_code,
                    sites=tuple(sites.get(u.id, ())),
                    active=u.active,
                    has_password=c is not None,
                    must_change=bool(c and c.must_change),
                    second_factor=bool(c and c.totp_enabled),
                    second_factor_required=u.role_code in required,
                    last_login=last.get(u.id),
                    failed_count=c.failed_count if c else 0,
                    locked_until=c.locked_until if c else None,
                    live_sessions=int(live.get(u.id, 0)),
                )
            )
        return out


@dataclass(frozen=True)
class AuthEventInfo:
    at: datetime
    kind: str
    user_name: str
    detail: str | None


def recent_events(db: Database, actor: Actor, name: str, limit: int = 20) -> list[AuthEventInfo]:
    """The latest authentication events of user ``name`` (administrators)."""
    actor.require(Capability.MANAGE_USERS, "see users' logins")
    with db.read(actor) as s:
        rows = s.execute(
            select(AuthEvent.at, AuthEvent.kind, AuthEvent.user_name, AuthEvent.detail)
            .where(AuthEvent.user_name == name)
            .order_by(AuthEvent.id.desc())
            .limit(limit)
        ).all()
        return [AuthEventInfo(*r) for r in rows]
