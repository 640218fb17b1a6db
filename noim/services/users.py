"""Users, roles and site memberships; resolving the acting user."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session

from noim.db.base import utcnow
from noim.db.models import Site, User, UserSite
from noim.db.session import Database
from noim.domain.exceptions import (
    AlreadyExists,
    NotFound,
    Problem,
    UnknownUser,
    ValidationError,
)
from noim.domain.roles import ROLE_SPECS, Actor, Capability, Role, parse_role
from noim.services.checks import require_reason

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")


@dataclass(frozen=True)
class UserInfo:
    name: str
    display_name: str | None
    role: str
    sites: tuple[str, ...]
    active: bool
    created_at: datetime


def validate_user_name(name: str) -> None:
    if not NAME_RE.match(name or ""):
        raise ValidationError(
            Problem(
                "user",
                "name",
                name,
                "USR-001",
                "2-64 characters: letters, digits and . _ @ -, starting with a letter or digit",
            )
        )


def resolve_actor(db: Database, name: str) -> Actor:
    """The acting user ``name``: must exist and be active."""
    with db.read() as s:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise UnknownUser(
                f"no noim user {name!r} in this database; an administrator can add one with "
                f"`noim users add {name} --role ROLE [--site SITE]`, or act as another user "
                "with --user / NOIM_USER"
            )
        if not user.active:
            raise UnknownUser(f"noim user {name!r} is deactivated; ask an administrator")
        return actor_of(s, user)


@functools.cache
def _user_sites() -> Select[int, str]:
    """A user's live sites (built once: every web request runs it)."""
    return (
        select(Site.id, Site.code)
        .join(UserSite, UserSite.site_id == Site.id)
        .where(UserSite.user_id == bindparam("user_id"), UserSite.voided_at.is_(None))
    )


def actor_of(s: Session, user: User) -> Actor:
    """The Actor of ``user`` (checked active by the caller), its live sites read in ``s``."""
    rows = s.execute(_user_sites(), {"user_id": user.id}).all()
    return Actor(
        name=user.name,
        role=Role(user.role_code),
        user_id=user.id,
        site_ids=frozenset(r.id for r in rows),
        site_codes=frozenset(r.code for r in rows),
    )


def _role(name: str, role: str | Role) -> Role:
    if isinstance(role, Role):
        return role
    try:
        return parse_role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise ValidationError(
            Problem(f"user {name}", "role", role, "USR-004", f"one of {allowed}")
        ) from None


def _sites_by_code(s: Session, codes: Iterable[str]) -> dict[str, Site]:
    codes = list(dict.fromkeys(codes))
    found = {site.code: site for site in s.scalars(select(Site).where(Site.code.in_(codes)))}
    missing = [c for c in codes if c not in found]
    if missing:
        known = ", ".join(s.scalars(select(Site.code).order_by(Site.code)))
        raise ValidationError(
            [Problem("user", "site", c, "USR-003", f"a site code: {known}") for c in missing]
        )
    return found


def _check_sites_for_role(name: str, role: Role, n_sites: int) -> None:
    spec = ROLE_SPECS[role]
    if spec.site_scoped and n_sites == 0:
        raise ValidationError(
            Problem(
                f"user {name}",
                "site",
                None,
                "USR-002",
                f"at least one --site for the {role.value} role",
            )
        )
    if not spec.site_scoped and n_sites:
        raise ValidationError(
            Problem(
                f"user {name}",
                "site",
                n_sites,
                "USR-002",
                f"no --site: the {role.value} role works across all sites",
            )
        )


def add_user(
    db: Database,
    actor: Actor,
    name: str,
    role: str | Role,
    sites: Sequence[str] = (),
    display_name: str | None = None,
) -> UserInfo:
    """Create a user with a role (and sites, for coordinators and researchers)."""
    with db.write(actor, reason=None) as s:
        return _info(s, create_user(s, actor, name, role, sites, display_name))


def create_user(
    s: Session,
    actor: Actor,
    name: str,
    role: str | Role,
    sites: Sequence[str] = (),
    display_name: str | None = None,
) -> User:
    """``add_user`` inside the caller's unit of work (a login's password is set with it)."""
    actor.require(Capability.MANAGE_USERS, "add users")
    validate_user_name(name)
    role = _role(name, role)
    _check_sites_for_role(name, role, len(sites))
    if s.scalar(select(User.id).where(User.name == name)) is not None:
        raise AlreadyExists(f"user {name!r} already exists; use `noim users update` to change it")
    site_rows = _sites_by_code(s, sites)
    user = User(
        name=name,
        display_name=display_name,
        role_code=role.value,
        active=True,
        created_at=utcnow(),
    )
    s.add(user)
    s.flush()
    for site in site_rows.values():
        s.add(UserSite(user_id=user.id, site_id=site.id))
    s.flush()
    return user


def info_of(s: Session, user: User) -> UserInfo:
    """What ``list_users`` shows of ``user``."""
    return _info(s, user)


def _info(s: Session, user: User) -> UserInfo:
    codes = s.scalars(
        select(Site.code)
        .join(UserSite, UserSite.site_id == Site.id)
        .where(UserSite.user_id == user.id, UserSite.voided_at.is_(None))
        .order_by(Site.code)
    ).all()
    return UserInfo(
        name=user.name,
        display_name=user.display_name,
        role=user.role_code,
        sites=tuple(codes),
        active=user.active,
        created_at=user.created_at,
    )


def list_users(db: Database, actor: Actor) -> list[UserInfo]:
    """Every user (administrators) or just yourself (everyone else)."""
    with db.read(actor) as s:
        stmt = select(User).order_by(User.name)
        if not actor.can(Capability.MANAGE_USERS):
            stmt = stmt.where(User.name == actor.name)
        return [_info(s, u) for u in s.scalars(stmt)]


def update_user(
    db: Database,
    actor: Actor,
    name: str,
    reason: str,
    role: str | Role | None = None,
    add_sites: Sequence[str] = (),
    remove_sites: Sequence[str] = (),
    active: bool | None = None,
    display_name: str | None = None,
) -> UserInfo:
    """Change a user's role, sites, active flag or display name (audited, with a reason)."""
    actor.require(Capability.MANAGE_USERS, "change users")
    reason = require_reason(reason, f"changing user {name!r}")
    if name == actor.name and active is False:
        raise ValidationError(
            Problem(f"user {name}", "active", False, "USR-005", "not to deactivate yourself")
        )
    with db.write(actor, reason=reason) as s:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFound(f"no user {name!r}; `noim users list` shows who exists")
        if role is not None:
            user.role_code = _role(name, role).value
        if active is not None:
            user.active = active
        if display_name is not None:
            user.display_name = display_name
        memberships = {
            m.site_id: m for m in s.scalars(select(UserSite).where(UserSite.user_id == user.id))
        }
        for site in _sites_by_code(s, add_sites).values():
            m = memberships.get(site.id)
            if m is None:
                s.add(UserSite(user_id=user.id, site_id=site.id))
            elif m.voided_at is not None:
                m.voided_at = None
                m.void_reason = None
        for code, site in _sites_by_code(s, remove_sites).items():
            m = memberships.get(site.id)
            if m is None or m.voided_at is not None:
                raise ValidationError(
                    Problem(f"user {name}", "site", code, "USR-006", "a site the user belongs to")
                )
            m.voided_at = utcnow()
            m.void_reason = reason
        s.flush()
        info = _info(s, user)
        _check_sites_for_role(name, Role(info.role), len(info.sites))
        return info


def site_codes(db: Database) -> list[str]:
    """The trial's site codes (the choices of a user's sites)."""
    with db.read() as s:
        return list(s.scalars(select(Site.code).order_by(Site.code)))
