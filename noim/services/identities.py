"""Identifiable details of children, birth parents and carers: record, change, erase.

The rules every identity record shares (the services for children, birth parents and
carers call them):

* only the site's coordinators and administrators write them (``WRITE_IDENTIFIABLE``);
* a change to details already recorded needs a reason (IDN-002), and the reason must not
  repeat a value it changes (IDN-003): the audit trail keeps reasons in clear for ever,
  and the values only as keyed digests (``noim.db.identity_audit``);
* ``erase`` removes a person's details on request: every field set to NULL (audited,
  with the reason), then the record's audit key deleted, so the digests the audit trail
  holds can no longer be linked to any value.  ``noim audit verify`` still passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db import identity_audit
from noim.db.base import Base
from noim.db.models import BirthParentIdentity, CarerIdentity, ChildIdentity
from noim.db.session import Database
from noim.domain.exceptions import Problem, ValidationError
from noim.domain.roles import Actor, Capability
from noim.services.checks import require_reason

#: values shorter than this are not searched for in a reason (initials, "1")
_SHORTEST = 3


def store(
    s: Session,
    record: str,
    identity: Base,
    fields: Mapping[str, str | None],
    names: Sequence[str],
    reason: str | None,
) -> dict[str, str | None]:
    """Write ``fields`` to ``identity`` (new or stored), applying IDN-002 and IDN-003."""
    stored = {n: getattr(identity, n) for n in names}
    changed = {n: v for n, v in fields.items() if v != stored[n]}
    known = any(v is not None for v in stored.values())
    if changed and known and any(stored[n] is not None for n in changed):
        if not reason or not reason.strip():
            raise ValidationError(
                Problem(
                    record,
                    "reason",
                    reason,
                    "IDN-002",
                    "a reason for changing identifiable details already recorded (--reason)",
                )
            )
        _reason_repeats_no_value(record, reason, [*changed.values(), *stored.values()])
    for name, value in changed.items():
        setattr(identity, name, value)
    s.add(identity)
    s.flush()
    return {n: getattr(identity, n) for n in names}


def _reason_repeats_no_value(record: str, reason: str, values: Sequence[str | None]) -> None:
    text = reason.casefold()
    for value in values:
        if (
            value is not None
            and len(value.strip()) >= _SHORTEST
            and value.strip().casefold() in text
        ):
            raise ValidationError(
                Problem(
                    record,
                    "reason",
                    "(not shown: it holds an identifiable value)",
                    "IDN-003",
                    "a reason that does not repeat the details it changes (the audit trail "
                    "keeps reasons for ever); say why, e.g. 'spelling corrected from the "
                    "birth certificate'",
                )
            )


@dataclass(frozen=True)
class Erased:
    """What an erasure did."""

    table: str
    record_id: int
    fields: tuple[str, ...]


#: kind -> (model, link column, the ``for`` function's module attribute, field names)
_KINDS: dict[str, tuple[type[Base], str]] = {
    "child": (ChildIdentity, "child_id"),
    "parent": (BirthParentIdentity, "birth_parent_id"),
    "carer": (CarerIdentity, "carer_id"),
}


def erase(db: Database, actor: Actor, kind: str, ref: str | int, reason: str) -> Erased:
    """Erase the identifiable details of a child (``ref`` its trial ID), a birth parent or a
    carer (``ref`` the id) on request: set them to NULL, audited with ``reason``, then
    delete the record's audit key.  The research data stay (pseudonymous)."""
    actor.require(Capability.WRITE_IDENTIFIABLE, "erase identifiable details")
    if kind not in _KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(_KINDS)}")
    why = require_reason(reason, f"erasing the identifiable details of {kind} {ref}")
    model, link = _KINDS[kind]
    names = sorted(identity_audit.identifying(model.__tablename__))
    with db.write(actor, reason=f"erasure on request: {why}") as s:
        person = _person(s, actor, kind, ref)
        identity: Any = s.scalar(select(model).where(getattr(model, link) == person))
        if identity is None:
            return Erased(model.__tablename__, 0, ())
        _reason_repeats_no_value(f"{kind} {ref}", why, [getattr(identity, n) for n in names])
        for name in names:
            setattr(identity, name, None)
        s.flush()
        identity_audit.erase_key(s.connection(), model.__tablename__, str(identity.id))
        return Erased(model.__tablename__, int(identity.id), tuple(names))


def _person(s: Session, actor: Actor, kind: str, ref: str | int) -> int:
    """The id of the child, birth parent or carer, checking the actor's site."""
    action = "erase identifiable details of"
    if kind == "child":
        from noim.services.families import child_for

        child, _family, _site = child_for(s, actor, str(ref), action)
        return int(child.id)
    from noim.services.people import carer_for, parent_for

    if kind == "parent":
        parent, _family, _site = parent_for(s, actor, int(ref), action)
        return int(parent.id)
    carer, _site = carer_for(s, actor, int(ref), action)
    return int(carer.id)
