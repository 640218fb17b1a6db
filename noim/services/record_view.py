"""The family and child record pages: everything recorded about one family or child, read in
one unit of work, site-scoped and blinded as every other service.

``family_view`` and ``child_view`` hold, per child, the status grid of timepoints x forms
(``noim.domain.status_grid``), the placements timeline, legal proceedings and events with
the jurisdiction's labels, carers and birth parents over time, consents, SAEs, deviations,
withdrawals, losses to follow-up, exclusions and the data queries on the records; and the
family's randomisation and intervention receipt.

Blinding is applied here, not in a template: for a role that may not see the arm the view
holds no allocation beyond the date of randomisation (``RandomisationView.arm`` is None),
no intervention receipt, and free text with arm words masked.  Identities (names, health
numbers, addresses) are loaded only for roles that may read them; for others the fields
are None and nothing is read.  A page costs the same number of SQL statements whatever
the size of the trial (``noim.services.record_parts``).

``record_history`` is one record's audit trail, with the masks of ``noim audit show``
(``noim.services.audit``): data managers and administrators (READ_AUDIT) read any
record's; other roles that read trial data read the history of records of their sites'
families, children and carers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from noim.db.audit import model_for
from noim.db.base import utcnow
from noim.db.blinding import arm_word_masker, hides_service_use, sees_arm
from noim.db.models import (
    Allocation,
    BirthParent,
    Child,
    ChildBirthParent,
    ChildCarer,
    DataQuery,
    Family,
    InterventionReceipt,
    LocalAuthority,
    ProtocolDeviation,
    SeriousAdverseEvent,
    Site,
    User,
)
from noim.db.session import Database
from noim.domain.exceptions import NotFound, PermissionDenied
from noim.domain.roles import Actor, Capability
from noim.domain.status_grid import StatusGrid, build_grid
from noim.domain.trialdef import TrialDefinition
from noim.services import record_parts as parts
from noim.services.audit import AuditRecord, history_rows
from noim.services.families import child_for, family_for
from noim.services.intervention import ReceiptView
from noim.services.intervention import _view as receipt_view
from noim.services.legal import EventView, ProceedingsView
from noim.services.legal_rules import LegalChecker
from noim.services.people import (
    CarerLinkView,
    ParentLinkView,
    ParentView,
    _carer_links,
    _parent_links,
    _parent_view,
)
from noim.services.placements import PlacementView
from noim.services.query_records import key_value, record_info
from noim.services.record_parts import (
    ChildIdentityView,
    ConsentRow,
    ContactView,
    ExclusionRow,
    LossRow,
    QueryRow,
    WithdrawalRow,
)
from noim.services.safety import DeviationView, SaeView, _deviations, _saes
from noim.services.setup import stored_definition

__all__ = [
    "AllocationShown",
    "ChildIdentityView",
    "ChildView",
    "ContactView",
    "FamilyView",
    "RandomisationView",
    "RecordHistory",
    "child_view",
    "family_view",
    "record_history",
]


@dataclass(frozen=True)
class AllocationShown:
    """The allocated arm, for roles that see it."""

    code: str
    name: str
    #: the arm's name at the family's site (GIFT, LIFT ...)
    label: str
    #: the site's team that delivers the arm
    team: str | None
    method: str
    randomised_by: str | None


@dataclass(frozen=True)
class RandomisationView:
    randomised_at: datetime
    #: None for roles that may not see the arm: their view holds only the date
    arm: AllocationShown | None

    @property
    def randomised_on(self) -> date:
        return self.randomised_at.date()


@dataclass(frozen=True)
class ChildView:
    trial_id: str
    family: str
    site: str
    jurisdiction: str
    child_number: int
    date_of_birth: date
    sex: str
    entered_care_on: date
    legal_route: str | None
    legal_route_label: str | None
    eligibility: str
    eligibility_decided_on: date | None
    ineligibility_reason: str | None
    joined_after_randomisation: bool
    voided: bool
    #: None unless the role reads identifiable details (then never None)
    identity: ChildIdentityView | None
    randomisation: RandomisationView | None
    grid: StatusGrid
    placements: tuple[PlacementView, ...]
    moves: int
    current_placement: PlacementView | None
    proceedings: tuple[ProceedingsView, ...]
    events: tuple[EventView, ...]
    carers: tuple[CarerLinkView, ...]
    parents: tuple[ParentLinkView, ...]
    #: carer id -> identity (empty unless the role reads identifiable details)
    carer_identities: dict[int, ContactView]
    #: birth parent id -> identity (empty unless the role reads identifiable details)
    parent_identities: dict[int, ContactView]
    consents: tuple[ConsentRow, ...]
    saes: tuple[SaeView, ...]
    #: deviations naming this child
    deviations: tuple[DeviationView, ...]
    withdrawals: tuple[WithdrawalRow, ...]
    losses: tuple[LossRow, ...]
    #: exclusions of this child or of its whole family
    exclusions: tuple[ExclusionRow, ...]
    queries: tuple[QueryRow, ...]


@dataclass(frozen=True)
class FamilyView:
    trial_id: str
    site: str
    site_name: str
    jurisdiction: str
    local_authority: str | None
    in_care_proceedings: bool | None
    registered_at: datetime
    voided: bool
    void_reason: str | None
    randomisation: RandomisationView | None
    #: the intervention receipt status (received, not_received, not_recorded): roles that
    #: see the arm, randomised families only; None otherwise
    intervention_status: str | None
    intervention: ReceiptView | None
    parents: tuple[ParentView, ...]
    parent_identities: dict[int, ContactView]
    deviations: tuple[DeviationView, ...]
    exclusions: tuple[ExclusionRow, ...]
    #: queries on the family's record and every child's records
    queries: tuple[QueryRow, ...]
    children: tuple[ChildView, ...]


# --------------------------------------------------------------------------- reads


def family_view(
    db: Database, actor: Actor, family_trial_id: str, today: date | None = None
) -> FamilyView:
    """Everything recorded about a family and its children (see the module docstring)."""
    actor.require(Capability.READ_TRIAL_DATA, "read family records")
    today = today or utcnow().date()
    with db.read(actor) as s:
        family, site = family_for(s, actor, family_trial_id, "read")
        children = s.scalars(
            select(Child).where(Child.family_id == family.id).order_by(Child.child_number)
        ).all()
        page = _Page(s, actor, family, site, children, today, family_scope=True)
        parents = s.scalars(
            select(BirthParent).where(BirthParent.family_id == family.id).order_by(BirthParent.id)
        ).all()
        la = (
            s.scalar(
                select(LocalAuthority.code).where(LocalAuthority.id == family.local_authority_id)
            )
            if family.local_authority_id
            else None
        )
        status, receipt = page.intervention()
        return FamilyView(
            trial_id=family.trial_id,
            site=site.code,
            site_name=site.name,
            jurisdiction=site.jurisdiction,
            local_authority=la,
            in_care_proceedings=family.in_care_proceedings,
            registered_at=family.registered_at,
            voided=family.voided_at is not None,
            void_reason=page.mask(family.void_reason),
            randomisation=page.randomisation,
            intervention_status=status,
            intervention=receipt,
            parents=tuple(_parent_view(p, family) for p in parents),
            parent_identities=page.contacts([p.id for p in parents], [])[0],
            deviations=tuple(page.deviations),
            exclusions=tuple(page.exclusions),
            queries=tuple(page.queries),
            children=tuple(page.child(c) for c in children),
        )


def child_view(
    db: Database, actor: Actor, child_trial_id: str, today: date | None = None
) -> ChildView:
    """Everything recorded about a child (see the module docstring)."""
    actor.require(Capability.READ_TRIAL_DATA, "read child records")
    today = today or utcnow().date()
    with db.read(actor) as s:
        child, family, site = child_for(s, actor, child_trial_id, "read")
        return _Page(s, actor, family, site, [child], today, family_scope=False).child(child)


class _Page:
    """The sections of one record page, each loaded once for all the page's children."""

    def __init__(
        self,
        s: Session,
        actor: Actor,
        family: Family,
        site: Site,
        children: Sequence[Child],
        today: date,
        family_scope: bool,
    ) -> None:
        self.s, self.actor, self.family, self.site, self.today = s, actor, family, site, today
        self.identifiable = actor.can(Capability.READ_IDENTIFIABLE)
        self.definition: TrialDefinition = stored_definition(s)
        self.mask = arm_word_masker(s, actor)
        ids = [c.id for c in children]
        names = {c.id: c.trial_id for c in children}
        self.names = names
        self.types = LegalChecker(s).types
        self.randomisation = self._randomisation()
        self.visits = parts.visits(s, ids, self.mask)
        self.assessments = parts.assessments(s, ids)
        self.placements = parts.placements(s, ids, names)
        self.proceedings = parts.proceedings(s, ids, names, self.mask)
        self.events = parts.events(s, ids, names, self.types, self.mask)
        self.consents = parts.consents(s, ids, names)
        self.withdrawals = parts.withdrawals(s, ids, names, self.mask)
        self.losses = parts.losses(s, ids, names, self.mask)
        self.exclusions = parts.exclusions(s, family.id, names, self.mask)
        self.carer_links = _carer_links(s, ChildCarer.child_id.in_(ids))
        self.parent_links = _parent_links(s, ChildBirthParent.child_id.in_(ids))
        self.saes = _masked(self.mask, _saes(s, SeriousAdverseEvent.child_id.in_(ids)))
        self.deviations = _masked(
            self.mask, _deviations(s, ProtocolDeviation.family_id == family.id)
        )
        self.child_ids = {c.trial_id: c.id for c in children}
        self.queries = parts.queries(
            s,
            actor,
            site.id,
            ids,
            family.id if family_scope else None,
            names,
            family.trial_id,
            self.mask,
            today,
        )
        self.identities = parts.child_identities(s, ids) if self.identifiable else {}
        self.parent_contacts, self.carer_contacts = self.contacts(
            [link.parent_id for link in self.parent_links],
            [link.carer_id for link in self.carer_links],
        )

    def contacts(
        self, parent_ids: Sequence[int], carer_ids: Sequence[int]
    ) -> tuple[dict[int, ContactView], dict[int, ContactView]]:
        if not self.identifiable:
            return {}, {}
        return parts.contacts(self.s, parent_ids, carer_ids)

    def _randomisation(self) -> RandomisationView | None:
        row = self.s.execute(
            select(Allocation, User.name)
            .outerjoin(User, User.id == Allocation.randomised_by_id)
            .where(Allocation.family_id == self.family.id)
        ).one_or_none()
        if row is None:
            return None
        allocation, by = row
        if not sees_arm(self.actor):
            return RandomisationView(allocation.randomised_at, None)
        arm = self.definition.arm(allocation.arm_code)
        site_def = self.definition.site(self.site.code)
        team = next((t.name for t in site_def.teams if t.arm == arm.code), None)
        shown = AllocationShown(
            arm.code, arm.name, arm.label_at(self.site.code), team, allocation.method, by
        )
        return RandomisationView(allocation.randomised_at, shown)

    def intervention(self) -> tuple[str | None, ReceiptView | None]:
        if self.randomisation is None or not sees_arm(self.actor):
            return None, None
        row = self.s.execute(
            select(InterventionReceipt, User.name)
            .join(User, User.id == InterventionReceipt.recorded_by_id)
            .where(
                InterventionReceipt.family_id == self.family.id,
                InterventionReceipt.voided_at.is_(None),
            )
        ).one_or_none()
        if row is None:
            return "not_recorded", None
        view = receipt_view(row[0], self.family.trial_id, row[1])
        return ("received" if view.received else "not_received"), view

    def child(self, c: Child) -> ChildView:
        name = c.trial_id
        places = self.placements[c.id]
        live = [p for p in places if not p.voided]
        current = next((p for p in reversed(live) if p.end_date is None), None)
        route = self.types.get(c.legal_route_code) if c.legal_route_code else None
        carers = tuple(x for x in self.carer_links if x.child == name)
        parents = tuple(x for x in self.parent_links if x.child == name)
        return ChildView(
            trial_id=name,
            family=self.family.trial_id,
            site=self.site.code,
            jurisdiction=self.site.jurisdiction,
            child_number=c.child_number,
            date_of_birth=c.date_of_birth,
            sex=c.sex,
            entered_care_on=c.entered_care_on,
            legal_route=c.legal_route_code,
            legal_route_label=route.label if route else None,
            eligibility=c.eligibility_status,
            eligibility_decided_on=c.eligibility_decided_on,
            ineligibility_reason=self.mask(c.ineligibility_reason),
            joined_after_randomisation=c.joined_after_randomisation,
            voided=c.voided_at is not None,
            identity=(
                self.identities.get(c.id, ChildIdentityView(None, None, None, None))
                if self.identifiable
                else None
            ),
            randomisation=self.randomisation,
            grid=build_grid(
                name,
                self.definition.timepoints,
                c.date_of_birth,
                c.entered_care_on,
                self.randomisation.randomised_on if self.randomisation else None,
                self.visits[c.id],
                self.assessments[c.id],
                self.today,
            ),
            placements=tuple(places),
            moves=max(len(live) - 1, 0),
            current_placement=current,
            proceedings=tuple(self.proceedings[c.id]),
            events=tuple(self.events[c.id]),
            carers=carers,
            parents=parents,
            carer_identities={
                k: v for k, v in self.carer_contacts.items() if any(x.carer_id == k for x in carers)
            },
            parent_identities={
                k: v
                for k, v in self.parent_contacts.items()
                if any(x.parent_id == k for x in parents)
            },
            consents=tuple(self.consents[c.id]),
            saes=tuple(x for x in self.saes if x.child == name),
            deviations=tuple(x for x in self.deviations if x.child == name),
            withdrawals=tuple(self.withdrawals[c.id]),
            losses=tuple(self.losses[c.id]),
            exclusions=tuple(x for x in self.exclusions if x.child in (None, name)),
            queries=tuple(q for q in self.queries if q.record == name),
        )


V = TypeVar("V", SaeView, DeviationView)


def _masked(mask: parts.Mask, views: list[V]) -> list[V]:
    return [replace(v, description=mask(v.description) or "") for v in views]


# --------------------------------------------------------------------------- audit history


@dataclass(frozen=True)
class RecordHistory:
    table: str
    key: str
    #: the child or family the record belongs to (None: a record of no family)
    trial_id: str | None
    entries: tuple[AuditRecord, ...]


def record_history(db: Database, actor: Actor, table: str, record_id: str) -> RecordHistory:
    """The audit history of one record (who, when, old, new, why), oldest first, with the
    masks of ``noim audit show``: arm columns and arm words masked for blinded roles,
    identity values hidden from roles that may not read them.

    Roles with READ_AUDIT (data manager, administrator) read any record's history; roles
    that read trial data read the history of a record that belongs to a family, child or
    carer of their sites (another site's: PermissionDenied; a record of no site: only
    READ_AUDIT)."""
    actor.require(Capability.READ_TRIAL_DATA, "read the history of trial records")
    try:
        model = model_for(table)
    except KeyError:
        raise NotFound(f"no table {table!r}; see docs/data-model.md for table names") from None
    t = model.__table__
    with db.read(actor) as s:
        key = _key(s, table, record_id)
        try:
            value = key_value(t, key)  # type: ignore[arg-type]
        except Exception:
            raise NotFound(f"no {table} record {record_id!r}") from None
        info = record_info(s, t, [value])  # type: ignore[arg-type]
        if str(value) not in info or _hidden(s, actor, table, value):
            # a record hidden from a blinded reader is answered as one that does not exist
            raise NotFound(f"no {table} record {record_id!r}")
        trial_id, site_id = info[str(value)]
        action = f"read the history of {table} record {record_id}"
        if site_id is None:
            if not actor.can(Capability.READ_AUDIT):
                raise PermissionDenied(
                    f"{actor.describe()} may not {action}: it belongs to no site's family, "
                    "so only roles that read the whole audit trail may"
                )
        else:
            code = s.scalar(select(Site.code).where(Site.id == site_id)) or str(site_id)
            actor.require_site(site_id, code, action)
    entries = history_rows(db, actor, table, key)
    return RecordHistory(table, key, trial_id, tuple(entries))


def _hidden(s: Session, actor: Actor, table: str, value: object) -> bool:
    """Whether the record is an arm-revealing service use (or a data query on one) that
    ``actor`` may not see (``noim.db.blinding``)."""
    if sees_arm(actor) or not isinstance(value, int):
        return False
    if table == "service_use":
        return hides_service_use(s, actor, value)
    if table == "data_queries":
        q = s.get(DataQuery, value)
        return (
            q is not None
            and q.table_name == "service_use"
            and q.row_key.isdigit()
            and (hides_service_use(s, actor, int(q.row_key)))
        )
    return False


def _key(s: Session, table: str, record_id: str) -> str:
    """The primary key of a record named by its key, or (families, children) its trial ID."""
    key = record_id.strip()
    if table in ("families", "children") and not key.isdigit():
        model = Family if table == "families" else Child
        found = s.scalar(select(model.id).where(model.trial_id == key.upper()))
        if found is None:
            raise NotFound(f"no {table} record {record_id!r}")
        return str(found)
    return key
