"""The random model of the synthetic trial: who is recruited, what happens to them, when.

Pure generation (no database): ``noim.services.demo`` turns these plans into records
through the real services and imports.  Every random number comes from the one
``numpy.random.Generator`` the caller seeds, drawn in a fixed order, so the same seed
and the same ``as_of`` date give the same trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from noim import instruments
from noim.domain.durations import add_months, months_between
from noim.domain.schedule import plan_visits
from noim.domain.trialdef import TrialDefinition

#: legal route into care per jurisdiction, and how often each is used
ENTRY_ROUTES = {
    "scotland": (["sc.cpo", "sc.s25", "sc.icso"], [0.5, 0.3, 0.2]),
    "england_wales": (["en.C1", "en.L2", "en.V2"], [0.6, 0.15, 0.25]),
}

#: permanence outcome -> the decision recorded for it, per jurisdiction
DECISIONS = {
    "scotland": {
        "return_home": "sc.return_home",
        "adoption": "sc.plan_adoption",
        "kinship": "sc.plan_kinship",
        "long_term_foster": "sc.plan_long_term_foster",
    },
    "england_wales": {
        "return_home": "en.E4A",
        "adoption": "en.adm_adoption",
        "kinship": "en.E43",
        "long_term_foster": "en.plan_long_term_foster",
    },
}
OUTCOMES = ("return_home", "adoption", "kinship", "long_term_foster")
OUTCOME_P = (0.35, 0.25, 0.2, 0.2)

#: the placement a permanence outcome leads to, and the end reason of the one before
OUTCOME_PLACEMENT = {
    "return_home": ("parents", "return_home"),
    "adoption": ("adoptive", "adoption"),
    "kinship": ("kinship", "kinship_placement"),
}

INELIGIBLE_REASONS = (
    "aged over 60 months at entry to care",
    "placed with a parent",
    "another sibling group already in the trial",
    "leaving the local authority area",
)
DECLINED_REASONS = ("carer declined", "birth parents declined", "no time for the assessments")
MISSED_REASONS = ("carer could not be contacted", "family moved away", "carer declined the visit")


@dataclass(frozen=True)
class Effects:
    """The true effects built into the synthetic trial (NIM against services as usual).

    ``sdq``: difference in mean SDQ total difficulties at follow-up (negative: fewer
    difficulties with NIM).  ``permanence_hr``: hazard ratio of reaching a permanence
    decision (above 1: sooner with NIM).
    """

    sdq: float = -2.0
    permanence_hr: float = 1.3


@dataclass
class ChildPlan:
    row: int  # index of the child's row in the families file
    date_of_birth: date
    sex: str
    difficulty: float  # latent SDQ total difficulties at baseline
    trial_id: str = ""


@dataclass
class FamilyPlan:
    ref: str
    site: str
    jurisdiction: str
    local_authority: str
    entered: date
    route: str
    screened: date
    consented: date
    randomised: date
    children: list[ChildPlan] = field(default_factory=list)
    trial_id: str = ""
    arm: str = ""


@dataclass(frozen=True)
class ScreenedOnly:
    """A screened family that was not enrolled: ineligible or declined."""

    site: str
    screened: date
    n_children: int
    ineligible_reason: str | None
    declined_reason: str | None


def recruitment(
    definition: TrialDefinition, n_families: int, as_of: date, rng: np.random.Generator
) -> tuple[list[FamilyPlan], list[ScreenedOnly]]:
    """Families recruited over four years ending a year before ``as_of``, and screening failures."""
    sites = definition.sites
    weights = np.array([s.target_families or 1 for s in sites], dtype=float)
    weights /= weights.sum()
    first = as_of - timedelta(days=5 * 365)
    span = 4 * 365
    offsets = np.sort(rng.integers(0, span, size=n_families))
    site_idx = rng.choice(len(sites), size=n_families, p=weights)
    taken: set[tuple[str, date, str, date]] = set()
    plans: list[FamilyPlan] = []
    others: list[ScreenedOnly] = []
    row = 0
    for i in range(n_families):
        site = sites[int(site_idx[i])]
        entered = first + timedelta(days=int(offsets[i]))
        routes, route_p = ENTRY_ROUTES[site.jurisdiction]
        screened = entered + timedelta(days=int(rng.integers(5, 22)))
        consented = screened + timedelta(days=int(rng.integers(0, 11)))
        fam = FamilyPlan(
            ref=f"F{i + 1}",
            site=site.code,
            jurisdiction=site.jurisdiction,
            local_authority=site.local_authorities[
                int(rng.integers(len(site.local_authorities)))
            ].code,
            entered=entered,
            route=routes[int(rng.choice(len(routes), p=route_p))],
            screened=screened,
            consented=consented,
            randomised=consented + timedelta(days=int(rng.integers(1, 12))),
        )
        youngest = int(rng.choice([int(rng.integers(0, 12)), int(rng.integers(0, 60))]))
        ages = [youngest]
        for _ in range(int(rng.choice(3, p=[0.72, 0.23, 0.05]))):
            older = ages[-1] + int(rng.integers(12, 30))
            if older < 60:
                ages.append(older)
        for age in ages:
            dob = add_months(entered, -age) - timedelta(days=int(rng.integers(0, 25)))
            sex = "female" if rng.random() < 0.5 else "male"
            while (site.code, dob, sex, entered) in taken or dob > entered:
                dob -= timedelta(days=1)  # the import tells families apart by these
            taken.add((site.code, dob, sex, entered))
            difficulty = float(np.clip(rng.normal(13.0, 6.0), 0.0, 38.0))
            fam.children.append(ChildPlan(row, dob, sex, difficulty))
            row += 1
        plans.append(fam)
        for _ in range(int(rng.poisson(0.8))):
            declined = rng.random() < 0.45
            others.append(
                ScreenedOnly(
                    site.code,
                    screened + timedelta(days=int(rng.integers(-3, 4))),
                    1 + int(rng.random() < 0.3),
                    None if declined else str(rng.choice(INELIGIBLE_REASONS)),
                    str(rng.choice(DECLINED_REASONS)) if declined else None,
                )
            )
    return plans, others


def families_csv(plans: list[FamilyPlan]) -> str:
    """The families import file of the plans (one row per child, grouped by family_ref)."""
    lines = [
        "family_ref,site,local_authority,in_care_proceedings,date_of_birth,sex,"
        "entered_care_on,legal_route"
    ]
    for f in plans:
        proceedings = "yes" if f.jurisdiction == "england_wales" else ""
        for c in f.children:
            lines.append(
                f"{f.ref},{f.site},{f.local_authority},{proceedings},{c.date_of_birth},"
                f"{c.sex},{f.entered},{f.route}"
            )
    return "\n".join(lines) + "\n"


def screening_csv(plans: list[FamilyPlan], others: list[ScreenedOnly]) -> str:
    """The screening import file: every screened family by date, the enrolled ones linked."""
    lines = [
        "site,reference,screened_on,local_authority,n_children,eligible,ineligible_reason,"
        "declined,declined_reason,family_id"
    ]
    screened = sorted(
        [(f.screened, 0, i) for i, f in enumerate(plans)]
        + [(o.screened, 1, i) for i, o in enumerate(others)]
    )
    numbers: dict[str, int] = {}
    for on, other, i in screened:
        site = others[i].site if other else plans[i].site
        numbers[site] = numbers.get(site, 0) + 1
        ref = f"{site}-S{numbers[site]:05d}"
        if other:
            o = others[i]
            eligible = "no" if o.ineligible_reason else "yes"
            declined = "yes" if o.declined_reason else "no"
            lines.append(
                f"{site},{ref},{on},,{o.n_children},{eligible},{o.ineligible_reason or ''},"
                f"{declined},{o.declined_reason or ''},"
            )
        else:
            f = plans[i]
            lines.append(
                f"{site},{ref},{on},{f.local_authority},{len(f.children)},yes,,no,,{f.trial_id}"
            )
    return "\n".join(lines) + "\n"


def eligibility_csv(plans: list[FamilyPlan]) -> str:
    """The eligibility import file: every child of an enrolled family eligible on screening."""
    lines = ["child_id,eligible,decided_on"]
    for f in plans:
        lines += [f"{c.trial_id},yes,{f.screened}" for c in f.children]
    return "\n".join(lines) + "\n"


def consents_csv(plans: list[FamilyPlan]) -> str:
    """The consents import file: the local authority consents for every child."""
    lines = ["child_id,consenter_type,form_version,consented_on"]
    for f in plans:
        lines += [f"{c.trial_id},local_authority,v3,{f.consented}" for c in f.children]
    return "\n".join(lines) + "\n"


@dataclass
class Outcomes:
    """The import files and rows (withdrawals, SAEs, deviations, service use) of the follow-up."""

    placements: list[str] = field(default_factory=list)
    legal: list[str] = field(default_factory=list)
    visits: list[str] = field(default_factory=list)
    assessments: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    withdrawals: list[tuple[str, str, date, str]] = field(default_factory=list)
    saes: list[tuple[str, str, date, date, str, bool]] = field(default_factory=list)
    deviations: list[tuple[str, str, date, str, str]] = field(default_factory=list)
    service_use: list[tuple[str, str, str, date, date, int]] = field(default_factory=list)

    def csv(self, header: str, rows: list[str]) -> str:
        return header + "\n" + "\n".join(rows) + "\n"


def _form(instrument: str, age: int) -> str:
    """The form the definition file gives for the child's age (``[form_ages]``)."""
    d = instruments.engine.load(instrument)
    return instruments.engine.form_for_age(d, age) or d.forms[0]


def _responses(instrument: str, form: str, level: float, rng: np.random.Generator) -> list[str]:
    """Cells item_1..item_n of one assessment: answers around ``level`` (0-1), a few missing."""
    d = instruments.engine.load(instrument)
    items = d.items_for(form)
    n = max(items)
    cells = [""] * n
    for number, item in items.items():
        if item.optional:
            continue
        u = rng.random()
        if u < 0.025:
            continue  # not answered
        if u < 0.03:
            cells[number - 1] = "dont_know"
            continue
        k = len(item.allowed) - 1
        draw = int(rng.binomial(k, level))
        cells[number - 1] = str(item.allowed[k - draw if item.reverse else draw])
    return cells


def follow_up(
    definition: TrialDefinition,
    plans: list[FamilyPlan],
    treated_arm: str,
    effects: Effects,
    as_of: date,
    rng: np.random.Generator,
) -> Outcomes:
    """What happens to the randomised children up to ``as_of`` (nothing is dated later)."""
    out = Outcomes()
    for f in plans:
        treated = f.arm == treated_arm
        hazard = 1.0 / 640.0 * (effects.permanence_hr if treated else 1.0)
        withdrawn: date | None = None
        if rng.random() < 0.05:
            w = f.randomised + timedelta(days=int(rng.integers(30, 700)))
            if w <= as_of:
                withdrawn = w
        if rng.random() < 0.06:
            on = f.randomised + timedelta(days=int(rng.integers(1, 500)))
            if on <= as_of:
                what = str(rng.choice(["visit", "consent", "intervention", "eligibility"]))
                severity = "major" if rng.random() < 0.3 else "minor"
                out.deviations.append((f.site, f.trial_id, on, what, severity))
        for c in f.children:
            cid = c.trial_id
            # legal events: the route into care and the proceedings that follow
            if f.jurisdiction == "scotland":
                ref = f.entered + timedelta(days=2)
                out.legal.append(f"{cid},{f.route},{f.entered},,,")
                out.legal.append(f"{cid},sc.reporter_referral,{ref},childrens_hearing,{ref},")
                cso = f.entered + timedelta(days=int(rng.integers(60, 150)))
                if cso <= as_of:
                    out.legal.append(f"{cid},sc.cso,{cso},childrens_hearing,{ref},")
            else:
                out.legal.append(
                    f"{cid},en.care_proceedings,{f.entered},care_proceedings,{f.entered},"
                )
                out.legal.append(f"{cid},{f.route},{f.entered},care_proceedings,{f.entered},")
            # permanence: time from entry to care, at least a month after randomisation
            days = max(int(rng.exponential(1.0 / hazard)), (f.randomised - f.entered).days + 30)
            outcome = OUTCOMES[int(rng.choice(4, p=OUTCOME_P))]
            decided = f.entered + timedelta(days=days)
            reentry = None
            moved_on = decided + timedelta(days=int(rng.integers(7, 90)))
            if decided <= as_of:
                out.legal.append(f"{cid},{DECISIONS[f.jurisdiction][outcome]},{decided},,,")
                if outcome == "return_home" and rng.random() < 0.25:
                    r = moved_on + timedelta(days=int(rng.integers(30, 400)))
                    if r <= as_of:
                        reentry = r
                        out.legal.append(f"{cid},any.reentry,{r},,,Return home broke down")
            # placements: foster care from entry, moves, then the permanent placement
            stays: list[tuple[date, str]] = [(f.entered, "foster")]
            ends: list[str] = []
            last = min(decided, as_of)
            day = f.entered
            for _ in range(int(rng.poisson(0.5 if treated else 0.9))):
                day += timedelta(days=int(rng.integers(30, 300)))
                if day >= last:
                    break
                stays.append((day, "foster" if rng.random() < 0.8 else "kinship"))
                ends.append("disruption" if rng.random() < 0.6 else "planned_move")
            if decided <= as_of and outcome in OUTCOME_PLACEMENT and moved_on <= as_of:
                kind, why = OUTCOME_PLACEMENT[outcome]
                stays.append((max(moved_on, stays[-1][0] + timedelta(days=1)), kind))
                ends.append(why)
                if reentry is not None and reentry > stays[-1][0]:
                    stays.append((reentry, "foster"))
                    ends.append("disruption")
            for j, (start, kind) in enumerate(stays):
                if j + 1 < len(stays):
                    out.placements.append(
                        f"{cid},{start},{stays[j + 1][0]},{kind},{ends[j]},{f.local_authority}"
                    )
                else:
                    out.placements.append(f"{cid},{start},,{kind},,{f.local_authority}")
            _assessments(definition, f, c, treated, effects, withdrawn, as_of, rng, out)
            if withdrawn is not None:
                level = "follow_up" if rng.random() < 0.7 else "intervention"
                out.withdrawals.append((f.site, cid, withdrawn, level))
            if rng.random() < 0.03:
                onset = f.randomised + timedelta(days=int(rng.integers(1, 900)))
                reported = onset + timedelta(days=int(rng.integers(0, 8)))
                if reported <= as_of:
                    category = str(rng.choice(["hospitalisation", "other_important"]))
                    out.saes.append((f.site, cid, onset, reported, category, rng.random() < 0.9))
            end = f.randomised + timedelta(days=364)
            if end <= as_of:
                hours = int(rng.integers(4, 40))
                out.service_use.append((f.site, cid, "sw_hour", f.randomised, end, hours))
                if treated:
                    sessions = int(rng.integers(2, 25))
                    out.service_use.append(
                        (f.site, cid, "nim_session", f.randomised, end, sessions)
                    )
    return out


def _assessments(
    definition: TrialDefinition,
    f: FamilyPlan,
    c: ChildPlan,
    treated: bool,
    effects: Effects,
    withdrawn: date | None,
    as_of: date,
    rng: np.random.Generator,
    out: Outcomes,
) -> None:
    """The child's assessments at each visit, and the visits missed (window over, not done)."""
    completion = {"baseline": 0.95}
    visits = plan_visits(definition.timepoints, f.entered, f.randomised)
    tps = {t.code: t for t in definition.timepoints}
    for k, v in enumerate(visits):
        stop = withdrawn or as_of
        if v.window_start > stop:
            continue
        p = completion.get(v.timepoint, 0.85 - 0.05 * k)
        if rng.random() >= p:
            if v.window_end < stop:
                out.visits.append(
                    f"{c.trial_id},{v.timepoint},missed,,{rng.choice(MISSED_REASONS)}"
                )
            continue
        span = (v.window_end - v.window_start).days
        on = v.window_start + timedelta(days=int(rng.integers(0, span + 1)))
        if rng.random() < 0.05:
            on = v.window_end + timedelta(days=int(rng.integers(1, 40)))  # late
        if v.timepoint != "baseline":
            on = max(on, f.randomised)
        if on > stop:
            continue
        age = months_between(c.date_of_birth, on)
        difficulty = c.difficulty
        if v.timepoint != "baseline":  # regression to the mean, plus the true effect
            difficulty = 0.6 * c.difficulty + 5.0 + (effects.sdq if treated else 0.0)
            difficulty += float(rng.normal(0.0, 3.0))
        level = float(np.clip(difficulty / 40.0, 0.01, 0.99))
        for si in tps[v.timepoint].instruments:
            if si.min_age_months is not None and age < si.min_age_months:
                continue
            if si.max_age_months is not None and age > si.max_age_months:
                continue
            form = _form(si.instrument, age)
            cells = _responses(si.instrument, form, level, rng)
            rows = out.assessments.setdefault((si.instrument, form), [])
            head = f"{c.trial_id},{v.timepoint},{si.instrument},{form},{si.respondent},{on}"
            rows.append(head + "," + ",".join(cells))


def assessments_header(instrument: str, form: str) -> str:
    """The header of a wide assessments file for one instrument and form."""
    n = max(instruments.engine.load(instrument).items_for(form))
    items = ",".join(f"item_{i}" for i in range(1, n + 1))
    return f"child_id,timepoint,instrument,form,respondent,date,{items}"


#: why a family did not receive its allocated service, and how often (codes of
#: ``INTERVENTION_NOT_RECEIVED_REASONS``; ``other`` with its details)
NOT_RECEIVED = (
    ("declined", 0.3, ""),
    ("not_engaged", 0.25, ""),
    ("left_care", 0.15, ""),
    ("moved_away", 0.1, ""),
    ("service_unavailable", 0.1, ""),
    ("other", 0.1, "carer in hospital for several months"),
)


def intervention_csv(
    plans: list[FamilyPlan], treated_arm: str, as_of: date, rng: np.random.Generator
) -> str:
    """The ``intervention`` import file: receipt of the allocated service per family.

    The most recently randomised families (8%, at least one) are not yet recorded (data
    entry lags); of the rest about 12% (at least one) did not receive it, for a reason of
    ``NOT_RECEIVED``; the others received it, the treated arm's service starting 1-6 weeks
    after randomisation, services as usual later (2-10 weeks), never after ``as_of``.
    """
    order = sorted(range(len(plans)), key=lambda i: (plans[i].randomised, plans[i].ref))
    pending = set(order[len(order) - max(1, round(0.08 * len(order))) :]) if order else set()
    recorded = [i for i in order if i not in pending]
    n_not = min(len(recorded), max(1, int(rng.binomial(len(recorded), 0.12))))
    not_received = set(rng.choice(recorded, size=n_not, replace=False).tolist()) if n_not else set()
    p = np.array([w for _, w, _ in NOT_RECEIVED])
    lines = ["family_id,received,started_on,reason,details"]
    for i in recorded:
        f = plans[i]
        if i in not_received:
            code, _, details = NOT_RECEIVED[int(rng.choice(len(NOT_RECEIVED), p=p / p.sum()))]
            lines.append(f"{f.trial_id},no,,{code},{details}")
            continue
        treated = f.arm == treated_arm
        lag = 7 + rng.gamma(2.0, 7.0) if treated else 14 + rng.gamma(2.0, 14.0)
        started = min(f.randomised + timedelta(days=int(lag)), as_of)
        lines.append(f"{f.trial_id},yes,{started},,")
    return "\n".join(lines) + "\n"
