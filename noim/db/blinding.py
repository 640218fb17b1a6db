"""Records a blinded reader must never see, as queries the services and extraction share.

Besides the arm itself (masked everywhere), service use of a type only one arm receives
(an Infant and Family Team session) tells its reader the family's arm.  The trial
definition lists those services (``[economics] arm_revealing_services``, unit-cost codes);
roles that may not see the arm never get such a service-use record, its cost, its audit
history or a data query on it, from any path (docs/roles.md, docs/security.md).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from sqlalchemy import Select, String, bindparam, cast, select
from sqlalchemy.orm import Session

from noim.db.models import ServiceUse, Trial, UnitCost
from noim.domain.roles import Actor, Capability
from noim.domain.trialdef import TrialDefinition


def sees_arm(actor: Actor) -> bool:
    return actor.can(Capability.SEE_ARM)


def _definition(s: Session) -> TrialDefinition | None:
    text = s.scalar(select(Trial.definition_toml).where(Trial.id == 1))
    return None if text is None else _parsed(text)


@functools.lru_cache(maxsize=4)
def _parsed(text: str) -> TrialDefinition:
    """The definition held in ``text`` (frozen: parsed once per process, not per page)."""
    from noim.domain.trialdef_parse import parse_definition

    return parse_definition(text, "database", stored=True)


def arm_revealing_services(s: Session) -> frozenset[str]:
    """Unit-cost codes the trial definition marks as revealing the arm."""
    definition = _definition(s)
    return frozenset() if definition is None else definition.economics.arm_revealing_services


def revealing_unit_costs(s: Session) -> Select[int]:
    """``SELECT id`` of the unit costs whose use reveals the arm."""
    codes = sorted(arm_revealing_services(s))
    return select(UnitCost.id).where(UnitCost.code.in_(codes))


def hidden_service_use(s: Session) -> Select[int]:
    """``SELECT id`` of the service-use records of arm-revealing services (voided or not)."""
    return select(ServiceUse.id).where(ServiceUse.unit_cost_id.in_(revealing_unit_costs(s)))


def hides_service_use(s: Session, actor: Actor, use_id: int) -> bool:
    """Whether service-use record ``use_id`` is one ``actor`` may not see."""
    if sees_arm(actor):
        return False
    return (
        s.scalar(
            select(ServiceUse.id).where(
                ServiceUse.id == use_id, ServiceUse.unit_cost_id.in_(revealing_unit_costs(s))
            )
        )
        is not None
    )


def hidden_query_keys(s: Session) -> Select[str]:
    """``SELECT row_key`` of service-use records a blinded reader may not see, as
    ``data_queries.row_key`` holds them (text)."""
    return select(cast(ServiceUse.id, String)).where(
        ServiceUse.unit_cost_id.in_(revealing_unit_costs(s))
    )


#: the parameter of ``hidden_query_keys_bound``: the codes of ``arm_revealing_services``
HIDDEN_SERVICES = "hidden_services"


def hidden_query_keys_bound() -> Select[str]:
    """``hidden_query_keys`` for a statement built once: the codes of the arm-revealing
    services are bound when it runs (parameter ``HIDDEN_SERVICES``)."""
    costs = select(UnitCost.id).where(UnitCost.code.in_(bindparam(HIDDEN_SERVICES, expanding=True)))
    return select(cast(ServiceUse.id, String)).where(ServiceUse.unit_cost_id.in_(costs))


ARM_MASK = "[arm masked]"


def arm_word_masker(s: Session, actor: Actor) -> Callable[[str | None], str | None]:
    """For a blinded ``actor``: a function that replaces, in a free text, every word that
    names an arm or what only one arm receives (arm codes and names, site labels of arms,
    the teams that deliver one arm, the arm-revealing services), case-insensitively.
    Roles that see the arm get the text as it is."""
    if sees_arm(actor):
        return lambda text: text
    definition = _definition(s)
    if definition is None:
        return lambda text: text
    words = set(definition.arm_words())
    codes = sorted(definition.economics.arm_revealing_services)
    words |= set(s.scalars(select(UnitCost.service).where(UnitCost.code.in_(codes))))
    words = {w for w in words if w and w.strip()}
    if not words:
        return lambda text: text
    pattern = re.compile(
        r"\b(?:" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")\b",
        re.IGNORECASE,
    )
    return lambda text: None if text is None else pattern.sub(ARM_MASK, text)


V = TypeVar("V")


def masked_text(s: Session, actor: Actor, views: Sequence[V], *fields: str) -> list[V]:
    """``views`` (frozen dataclasses) with the free-text ``fields`` passed through
    ``arm_word_masker`` for a blinded ``actor`` (unchanged for roles that see the arm)."""
    if sees_arm(actor):
        return list(views)
    mask = arm_word_masker(s, actor)
    return [
        replace(v, **{f: mask(getattr(v, f)) for f in fields})  # type: ignore[type-var]
        for v in views
    ]
