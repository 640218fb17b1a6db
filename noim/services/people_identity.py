"""Identifiable details (name, address, phone) of birth parents and carers.

Kept in ``birth_parent_identities`` and ``carer_identities``, apart from the
research data; only roles allowed identifiable details (the site's
coordinators, administrators) may write or read them, as for children
(``noim.services.families.set_child_identity``).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select

from noim.db.models import BirthParentIdentity, CarerIdentity
from noim.db.session import Database
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services import identities
from noim.services.checks import only_fields
from noim.services.people import carer_for, parent_for
from noim.services.recording import short_enough

#: identity fields and their column widths (None: unlimited text)
CONTACT_FIELDS: dict[str, int | None] = {
    "given_name": 128,
    "family_name": 128,
    "address": None,
    "postcode": 10,
    "phone": 32,
}


def _check(record: str, fields: Mapping[str, str | None]) -> None:
    only_fields(record, fields, CONTACT_FIELDS, "PPL-016")
    problems: list[Problem] = []
    for name, value in fields.items():
        problems += short_enough(record, name, value, "PPL-016", CONTACT_FIELDS[name])
    if problems:
        raise ValidationError(problems)


def _as_dict(identity: BirthParentIdentity | CarerIdentity | None) -> dict[str, str | None]:
    return {f: (getattr(identity, f) if identity else None) for f in CONTACT_FIELDS}


def set_parent_identity(
    db: Database, actor: Actor, parent_id: int, reason: str | None = None, **fields: str | None
) -> dict[str, str | None]:
    """Record or change a birth parent's identifiable details (a change needs a reason)."""
    actor.require(Capability.WRITE_IDENTIFIABLE, "record identifiable details")
    record = f"birth parent {parent_id}"
    _check(record, fields)
    with db.write(actor, reason=reason.strip() if reason else None) as s:
        parent, _family, _site = parent_for(s, actor, parent_id, "record identifiable details of")
        identity = s.scalar(
            select(BirthParentIdentity).where(BirthParentIdentity.birth_parent_id == parent.id)
        ) or BirthParentIdentity(birth_parent_id=parent.id)
        return identities.store(s, record, identity, fields, list(CONTACT_FIELDS), reason)


def get_parent_identity(db: Database, actor: Actor, parent_id: int) -> dict[str, str | None]:
    """A birth parent's identifiable details: only their site's coordinators and administrators."""
    actor.require(Capability.READ_IDENTIFIABLE, "read identifiable details")
    with db.read(actor) as s:
        parent, _family, _site = parent_for(s, actor, parent_id, "read identifiable details of")
        return _as_dict(
            s.scalar(
                select(BirthParentIdentity).where(BirthParentIdentity.birth_parent_id == parent.id)
            )
        )


def set_carer_identity(
    db: Database, actor: Actor, carer_id: int, reason: str | None = None, **fields: str | None
) -> dict[str, str | None]:
    """Record or change a carer's identifiable details (a change needs a reason)."""
    actor.require(Capability.WRITE_IDENTIFIABLE, "record identifiable details")
    record = f"carer {carer_id}"
    _check(record, fields)
    with db.write(actor, reason=reason.strip() if reason else None) as s:
        carer, _site = carer_for(s, actor, carer_id, "record identifiable details of")
        identity = s.scalar(
            select(CarerIdentity).where(CarerIdentity.carer_id == carer.id)
        ) or CarerIdentity(carer_id=carer.id)
        return identities.store(s, record, identity, fields, list(CONTACT_FIELDS), reason)


def get_carer_identity(db: Database, actor: Actor, carer_id: int) -> dict[str, str | None]:
    """A carer's identifiable details: only their site's coordinators and administrators."""
    actor.require(Capability.READ_IDENTIFIABLE, "read identifiable details")
    with db.read(actor) as s:
        carer, _site = carer_for(s, actor, carer_id, "read identifiable details of")
        return _as_dict(s.scalar(select(CarerIdentity).where(CarerIdentity.carer_id == carer.id)))
