"""The data of the DMC interim reports: every table, the CONSORT numbers and the figures.

``build(db, actor, closed=..., freeze=..., as_of=...)`` checks the reader's capability
(``read_closed_report`` for the closed report, ``read_open_report`` for the open one) and
assembles an ``InterimReport``: ordered sections of tables (pandas DataFrames), the CONSORT
counts and the figures (matplotlib).  Every section is built from the DataFrames of
``noim.extract.bundle(..., REPORT_DATASETS)``: the analysis datasets (children, scores,
permanence), the operational ones (screening, visits, queries, saes, deviations, exits:
``noim.extract.operations``) and the trial definition.  With ``freeze`` they are read from the
data freeze (as of its date); without, the same datasets are built live in one read
transaction as of ``as_of``.  No section reads a table itself, so a report re-run on the same
freeze gives the same tables, and the number of SQL statements does not depend on the number
of families.

The extracts run on behalf of a read-only *report reader*: the same user as a trial
statistician (open report: blinded, masked arm codes, which are then dropped) or an
unblinded statistician (closed report).  The open report is pooled: no column, row, label
or figure in it names an arm.

With ``dummy_arms=True`` (``noim report interim --closed --dummy-arms``) a blinded
statistician (``analyse`` without ``see_arm``) gets the closed report on **dummy arms**
(``noim.extract.dummy``): every section of it, by a seeded dummy two-arm coding of the
families made from the masked extraction, with the open report's protections (free text
redacted, no arm name) and every table, figure and header labelled "DUMMY ARMS: not the
allocation".  Roles that may read the closed report get the allocated arms from the same
call: the real arms replace the dummy ones with nothing changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from noim import extract, stats
from noim.db.session import Database
from noim.domain.exceptions import NoimError
from noim.domain.roles import Actor, Capability, Role
from noim.domain.trialdef import TrialDefinition, parse_definition
from noim.extract import dummy
from noim.extract._base import FreezeNotSupported
from noim.reports import operational as ops
from noim.reports.summaries import (
    CAUSES,
    PRIMARY,
    PRIMARY_BASELINE,
    TIME_AXIS,
    arm_counts,
    baseline_table,
    comparison_row,
    direction_note,
    flow_counts,
    mean_sd_by,
    numbers_note,
    order_arms,
    outcome_data,
    stats_warnings,
    status_counts,
)

__all__ = [
    "REPORT_DATASETS",
    "FreezeIncomplete",
    "InterimReport",
    "Section",
    "build",
    "report_reader",
]

#: the pooled column of the open report (and the total column of the closed one)
ALL = "all"
#: every dataset the report reads (``noim.extract.bundle``): from a freeze, or live
REPORT_DATASETS = (
    "children",
    "scores",
    "scores_wide",
    "permanence",
    "timepoints",
    "trial",
    *extract.operations.OPERATIONAL_NAMES,
)


class FreezeIncomplete(NoimError):
    """The data freeze lacks datasets the report reads (made by an earlier version)."""


@dataclass
class Section:
    """One section of the report: a title, tables (name -> frame) and notes."""

    key: str
    title: str
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class InterimReport:
    """Everything the renderers need; no rendering decisions."""

    kind: str  # "open" or "closed"
    trial_name: str
    registration: str
    as_of: date
    freeze: str | None
    reader: str
    consort: dict[str, Any]
    sections: list[Section]
    figures: dict[str, Any]  # name -> matplotlib Figure
    #: the seed of the dummy arms when the closed report was built on them (blinded reader)
    dummy_seed: int | None = None

    @property
    def closed(self) -> bool:
        return self.kind == "closed"

    @property
    def dummy(self) -> bool:
        """Built on dummy arms (a blinded reader's closed report), not the allocation."""
        return self.dummy_seed is not None

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: t for sec in self.sections for name, t in sec.tables.items()}

    def header(self) -> dict[str, Any]:
        source = f"data freeze {self.freeze}" if self.freeze else "live data (no freeze)"
        coding = "dummy" if self.dummy else ("allocated" if self.closed else "pooled")
        return {
            "report": f"{self.kind} interim report"
            + (f" [{dummy.DUMMY_LABEL}]" if self.dummy else ""),
            "arm_coding": coding,
            "arm_label": dummy.DUMMY_LABEL if self.dummy else None,
            "dummy_seed": self.dummy_seed,
            "trial": self.trial_name,
            "registration": self.registration,
            "as_of": self.as_of.isoformat(),
            "freeze": self.freeze,
            "source": source,
        }


def report_reader(actor: Actor, closed: bool, dummy_arms: bool = False) -> Actor:
    """Check the capability and return the read-only actor the extracts run as."""
    return _reader(actor, closed, dummy_arms)[0]


def on_dummy_arms(actor: Actor, closed: bool, dummy_arms: bool) -> bool:
    """Whether ``actor``'s report is the closed one on dummy arms: asked for (``closed`` and
    ``dummy_arms``) by a blinded analyst (the ``analyse`` capability, neither ``see_arm`` nor
    ``read_closed_report``)."""
    return (
        closed
        and dummy_arms
        and not actor.can(Capability.READ_CLOSED_REPORT)
        and not actor.can(Capability.SEE_ARM)
        and actor.can(Capability.ANALYSE)
    )


def _reader(actor: Actor, closed: bool, dummy_arms: bool) -> tuple[Actor, bool]:
    """The read-only actor the extracts run as, and whether the report is on dummy arms.

    A blinded reader (masked codes, never an arm) for the open report and for the closed
    report on dummy arms; an unblinded one for the closed report."""
    if on_dummy_arms(actor, closed, dummy_arms):
        role, fake = Role.STATISTICIAN, True
    elif closed:
        actor.require(Capability.READ_CLOSED_REPORT, "read the closed interim report")
        role, fake = Role.UNBLINDED_STATISTICIAN, False
    else:
        actor.require(Capability.READ_OPEN_REPORT, "read the open interim report")
        role, fake = Role.STATISTICIAN, False
    return Actor(name=actor.name, role=role, user_id=actor.user_id), fake


def build(
    db: Database,
    actor: Actor,
    *,
    closed: bool,
    freeze: str | None = None,
    as_of: date | None = None,
    dummy_arms: bool = False,
    dummy_seed: int = dummy.DEFAULT_SEED,
) -> InterimReport:
    """Assemble the open (pooled) or closed (by arm) interim report.

    ``dummy_arms``: a blinded analyst's closed report is built on dummy arms seeded with
    ``dummy_seed`` (module docstring); roles that read the closed report get the real arms,
    and the open report is pooled whatever it says."""
    reader, on_dummy = _reader(actor, closed, dummy_arms)
    if freeze is not None:
        as_of = _freeze_date(db, reader, freeze, as_of)
    else:
        as_of = as_of or date.today()
    # ONE code path: every section is built from these frames, read from the freeze or
    # built live in one read transaction (noim.extract.bundle)
    data = extract.bundle(
        db,
        reader,
        REPORT_DATASETS,
        **({"freeze": freeze} if freeze is not None else {"as_of": as_of}),
    )
    kids, wide, long, perm = (data[n] for n in ("children", "scores_wide", "scores", "permanence"))
    if on_dummy:  # the masked codes replaced by the dummy coding of the families
        coding = dummy.coding(kids, dummy_seed)
        kids, wide, long, perm = (dummy.apply(f, coding) for f in (kids, wide, long, perm))
    redact = not closed or on_dummy  # what a blinded reader gets: no arm name, free text redacted
    definition = parse_definition(
        str(data["trial"]["definition"].iloc[0]), "trial definition", stored=True
    )
    arm_names = {a.code: a.name for a in definition.arms}
    targets = {site.code: site.target_families for site in definition.sites}
    timepoints = [str(tp) for tp in data["timepoints"]["code"]]
    screening = ops.screening_counts(data["screening"])
    reasons = ops.not_eligible_reasons(data["screening"])
    visits = ops.visit_table(data["visits"], as_of)
    queries = ops.open_query_ages(data["queries"], as_of)
    saes = data["saes"].drop(columns=["family_id"])
    for column in ("onset", "reported"):
        saes[column] = saes[column].dt.strftime("%Y-%m-%d")
    deviations = data["deviations"][["family_id", "category", "severity"]].copy()
    exits = ops.exit_rows(data["exits"])
    arm_words = ops.arm_words(definition)
    if not closed:
        for frame in (kids, wide, long, perm):
            frame["arm"] = ALL
    if redact:
        arm_names = {}
    group = "arm"
    arm_of = dict(zip(kids["child_id"], kids["arm"], strict=True))
    fam_arm = dict(zip(kids["family_id"], kids["arm"], strict=False))
    levels = sorted(kids["arm"].unique().tolist()) if len(kids) else [ALL]
    figures: dict[str, Any] = {}
    sections: list[Section] = []

    # ------------------------------------------------------------------ CONSORT
    outcomes = outcome_data(kids, wide, data["visits"], as_of)
    flow = flow_counts(kids, long, wide, outcomes, group)
    consort: dict[str, Any] = {
        "screened": screening["screened"],
        "eligible": screening["eligible"],
        "not_eligible": screening["ineligible"],
        "not_eligible_reasons": reasons,
        "declined": screening["declined"],
        "consented_enrolled": screening["enrolled"],
        "randomised": {str(k): v for k, v in flow.items()},
        "withdrawn_and_lost_reasons": _exit_reasons(exits, arm_of),
    }
    if redact:
        consort = _scrub(consort, arm_words)
    from noim.reports.consort import consort_figure

    figures["consort"] = consort_figure(consort, timepoints)
    flow_table = pd.DataFrame({str(lv): pd.Series(c) for lv, c in flow.items()})
    flow_table = flow_table.rename_axis("stage").reset_index()
    if closed and len(flow) > 1:
        flow_table["total"] = flow_table[[str(lv) for lv in flow]].sum(axis=1)
    sec = Section("consort", "Participant flow (CONSORT)", figures=["consort"])
    sec.tables["screening"] = pd.DataFrame(
        [(k, v) for k, v in screening.items()], columns=["stage", "families"]
    )
    sec.tables["flow"] = flow_table
    sec.tables["exit_reasons"] = pd.DataFrame(
        [
            (group, what, reason, n)
            for group, whats in consort["withdrawn_and_lost_reasons"].items()
            for what, reasons_ in whats.items()
            for reason, n in reasons_.items()
        ],
        columns=["arm", "what", "reason", "children"],
    )
    sec.notes += [
        "Screening counts are families (screening log); flow counts are children.",
        "Received the allocated intervention: from the families' receipt records "
        "(noim intervention record), in families and children; reasons in families.",
    ]
    sections.append(sec)

    # ------------------------------------------------------------------ recruitment
    from noim.reports.charts import recruitment_figure

    fams = kids.drop_duplicates("family_id")[["family_id", "site", "randomised_on", "arm"]]
    fams = fams.assign(month=fams["randomised_on"].dt.strftime("%Y-%m"))
    rec = (
        fams.groupby(["site", "month"]).size().rename("randomised").reset_index()
        if len(fams)
        else pd.DataFrame(columns=["site", "month", "randomised"])
    )
    rec["cumulative"] = rec.groupby("site")["randomised"].cumsum()
    rec["target"] = rec["site"].map(targets)
    sec = Section("recruitment", "Recruitment against target", figures=["recruitment"])
    sec.tables["recruitment"] = rec.astype({"randomised": "int64", "cumulative": "int64"})
    figures["recruitment"] = recruitment_figure(rec, targets)
    sec.notes.append("Families randomised per month and cumulatively, by site; target per site.")
    sections.append(sec)

    # ------------------------------------------------------------------ baseline
    sec = Section("baseline", "Baseline characteristics (ITT set)")
    sec.tables["baseline"] = baseline_table(kids, wide, by_arm=closed)
    sec.notes.append("Continuous: mean (SD) [n observed]; categorical: n (% of the column).")
    sections.append(sec)

    # ------------------------------------------------------------------ retention
    sec = Section("retention", "Retention, form completeness, overdue visits, data queries")
    forms = long.drop_duplicates(["child_id", "timepoint", "instrument", "respondent"])
    forms = forms.merge(kids[["child_id"]], on="child_id")
    site_of = dict(zip(kids["child_id"], kids["site"], strict=True))
    forms = forms.assign(site=forms["child_id"].map(site_of))
    per_tp = forms.groupby(["timepoint", "site"]).agg(
        forms=("child_id", "size"),
        completed_forms=("completed", "sum"),
    )
    keys = ["timepoint", "site"]
    ret = visits.merge(per_tp.reset_index(), on=keys, how="left")
    ret = ret.merge(ops.due_with_form(data["visits"], forms, as_of), on=keys, how="left")
    ret = ret.fillna(0)
    for col in ("forms", "completed_forms", "due_with_form"):
        ret[col] = ret[col].astype("int64")
    due = ret["due"].where(ret["due"] > 0)
    ret["retention_pct"] = (100 * ret["completed"] / due).round(1)
    ret["data_completeness_pct"] = (100 * ret["due_with_form"] / due).round(1)
    ret["form_completeness_pct"] = (
        100 * ret["completed_forms"] / ret["forms"].where(ret["forms"] > 0)
    ).round(1)
    order = {tp: i for i, tp in enumerate(timepoints)}
    ret = ret.sort_values(
        ["timepoint", "site"],
        key=lambda c: c.map(order).fillna(len(order)) if c.name == "timepoint" else c,
    )
    sec.tables["retention"] = ret.reset_index(drop=True)
    sec.tables["open_queries"] = queries
    sec.notes += [
        "Due: visits whose window has closed by the as-of date (or completed earlier); not yet "
        "due: the others, which are neither missed, overdue nor missing (visits = not yet due + "
        "due; due = completed + missed + not required + overdue); overdue: due and still "
        "scheduled.",
        "Retention: completed among due. Data completeness: due visits whose child has a form "
        "at that timepoint, among due. Form completeness: forms marked complete among forms "
        "recorded.",
    ]
    sections.append(sec)

    # ------------------------------------------------------------------ safety
    sec = Section("safety", "Serious adverse events and protocol deviations")
    saes["arm"] = saes["child_id"].map(arm_of).fillna(ALL) if closed else ALL
    deviations["arm"] = deviations["family_id"].map(fam_arm).fillna(ALL) if closed else ALL
    sec.tables["sae_counts"] = _counts(saes, ["category"], levels)
    listing = saes
    if not closed:
        listing = listing.drop(columns=["arm"])
    sec.tables["sae_listing"] = listing.reset_index(drop=True)
    sec.tables["deviation_counts"] = _counts(deviations, ["category", "severity"], levels)
    sec.notes.append("SAE descriptions are not shown (free text); see the SAE records.")
    sections.append(sec)

    # ------------------------------------------------------------------ permanence
    sec = _permanence(perm, kids, closed, figures)
    sections.append(sec)

    # ------------------------------------------------------------------ primary
    with stats_warnings() as warned:  # too few clusters: said beside the primary table
        sec = _primary(
            outcomes,
            closed,
            definition,
            arm_counts(kids),
            len(kids),
            direction=dummy.DIRECTION if on_dummy else None,
        )
    sec.notes += warned
    sections.append(sec)

    if not closed:
        for s_ in sections:
            for name, t in s_.tables.items():
                if "arm" in t.columns:
                    s_.tables[name] = t.drop(columns=["arm"])
    consort["arms"] = dict(arm_names.items()) if closed else {}
    if redact:  # free text (reasons) must not name an arm either
        for s_ in sections:
            s_.tables = {n: _scrub_frame(t, arm_words) for n, t in s_.tables.items()}
    if on_dummy:  # every table, section, figure and the arms say it is not the allocation
        consort["arms"] = dict.fromkeys(dummy.DUMMY_ARMS, dummy.DUMMY_LABEL)
        for s_ in sections:
            s_.title = f"[{dummy.DUMMY_LABEL}] {s_.title}"
            s_.tables = {n: dummy.label_table(t) for n, t in s_.tables.items()}
        from noim.reports.figures import label

        for fig in figures.values():
            label(fig, dummy.DUMMY_LABEL)
    return InterimReport(
        kind="closed" if closed else "open",
        trial_name=str(data["trial"]["short_name"].iloc[0]),
        registration=str(data["trial"]["registration"].iloc[0]),
        as_of=as_of,
        freeze=freeze,
        reader=actor.name,
        consort=consort,
        sections=sections,
        figures=figures,
        dummy_seed=dummy_seed if on_dummy else None,
    )


def _freeze_date(db: Database, reader: Actor, freeze: str, as_of: date | None) -> date:
    """The as-of date of ``freeze``, after checking it holds every dataset the report reads."""
    from noim.services.freezes import show_freeze

    if as_of is not None:
        raise FreezeNotSupported(
            f"freeze={freeze!r} and as_of={as_of}: a freeze is read as of the date it was "
            "made; expected one of freeze= or as_of="
        )
    try:
        freeze_id = int(freeze)
    except ValueError:
        raise FreezeNotSupported(
            f"freeze={freeze!r}: expected a freeze id (a whole number)"
        ) from None
    info = show_freeze(db, reader, freeze_id)
    held = {d.name for d in info.datasets}
    missing = [name for name in REPORT_DATASETS if name not in held]
    if missing:
        raise FreezeIncomplete(
            f"data freeze {info.id} ({info.label!r}) holds no {', '.join(missing)} dataset"
            f"{'s' if len(missing) > 1 else ''}: it was made by an earlier version of noim, "
            "before reports were read from freezes; make a new freeze (`noim freeze create`) "
            "and write the report from it"
        )
    return info.as_of


#: what replaces an arm code or label in the free text of the open report
REDACTED = "[redacted]"


def _scrub(value: Any, words: list[str]) -> Any:
    """``value`` with every arm code or label in its strings replaced (open report)."""
    if isinstance(value, dict):
        return {_scrub(k, words): _scrub(v, words) for k, v in value.items()}
    if isinstance(value, str):
        for word in words:
            value = re.sub(re.escape(word), REDACTED, value, flags=re.IGNORECASE)
        return value
    return value


def _scrub_frame(df: pd.DataFrame, words: list[str]) -> pd.DataFrame:
    out = df.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(lambda v: _scrub(v, words))
    return out


def _exit_reasons(
    exits: list[tuple[str, str, str]], arm_of: dict[str, str]
) -> dict[str, dict[str, dict[str, int]]]:
    """Group -> "withdrawn from <level>" or "lost to follow-up" -> reason -> children."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for child, what, reason in exits:
        if child not in arm_of:  # not randomised by the as-of date
            continue
        group = str(arm_of[child])
        counts = out.setdefault(group, {}).setdefault(what, {})
        counts[reason] = counts.get(reason, 0) + 1
    return {
        g: {w: dict(sorted(r.items())) for w, r in sorted(v.items())}
        for g, v in sorted(out.items())
    }


def _counts(df: pd.DataFrame, by: list[str], levels: list[str]) -> pd.DataFrame:
    """Rows by ``by`` with one column per arm level (or ``all``), zeros filled."""
    if not len(df):
        return pd.DataFrame(columns=[*by, *levels])
    table = pd.crosstab([df[c] for c in by], df["arm"]).reindex(columns=levels, fill_value=0)
    table.columns = [str(c) for c in table.columns]
    out = table.reset_index()
    if len(levels) > 1:
        out["total"] = out[levels].sum(axis=1)
    return out


def _permanence(
    perm: pd.DataFrame, kids: pd.DataFrame, closed: bool, figs: dict[str, Any]
) -> Section:
    from noim.reports import figures

    month = figures.DAYS_PER_MONTH
    itt = set(kids.loc[kids["itt"], "child_id"])
    data = perm[perm["child_id"].isin(itt)].reset_index(drop=True)
    sec = Section("permanence", "Permanence: time to the first permanence decision")
    group = "arm" if closed else None
    keys = data["arm"] if closed else pd.Series(ALL, index=data.index)
    counts = pd.crosstab(data["event"].map(CAUSES).fillna("censored"), keys)
    counts = counts.reindex(["censored", *CAUSES.values()], fill_value=0)
    counts.columns = [str(c) for c in counts.columns]
    sec.tables["permanence_events"] = counts.rename_axis(index="outcome").reset_index()
    if len(data) and (data["event"] > 0).any():
        cif = stats.cumulative_incidence(data, "duration", "event", group=group)
        at = cif.at([m * month for m in (12, 24, 30)])
        at["months"] = [round(t / month) for t in at["time"]]
        at["outcome"] = at["cause"].map(CAUSES)
        cols = ["group", "outcome", "months", "estimate", "lower", "upper"]
        table = at[cols].rename(columns={"group": "arm"})
        sec.tables["cumulative_incidence"] = table.reset_index(drop=True)
        causes = [c for c in cif.causes if (data["event"] == c).any()]
        times = figures.covering([0, 6, 12, 18, 24, 30], float(data["duration"].max()) / month)
        risk = figures.numbers_at_risk(data, "duration", group, times, scale=month)
        figs["cumulative_incidence"] = figures.cif_figure(
            cif,
            CAUSES,
            "Cumulative incidence of the first permanence decision",
            causes=causes,
            at_times=times,
            at_risk=risk,
            scale=month,
            xlabel=TIME_AXIS,
        )
        sec.figures.append("cumulative_incidence")
        sec.notes.append("Aalen-Johansen estimates with 95% CI; other outcomes compete.")
        if closed:
            every = arm_counts(data)
            sec.notes.append(
                numbers_note(arm_counts(kids), every, every, sorted(every), "a permanence duration")
            )
    else:
        sec.notes.append("No permanence decisions by the as-of date: no curves.")
    return sec


def _primary(
    data: pd.DataFrame,
    closed: bool,
    definition: TrialDefinition,
    randomised: dict[Any, int],
    n_randomised: int,
    direction: str | None = None,
) -> Section:
    """The primary analysis as ``analysis/03_primary.py`` runs it: every child with the
    outcome, a missing baseline handled by the missing-indicator method (the default of
    ``stats.compare_arms``), intervention minus control (``direction``: the note saying so,
    by default ``direction_note(definition)``; the dummy arms' on dummy arms)."""
    sec = Section("primary", "Primary outcome: SDQ total difficulties at 30 months")
    desc = mean_sd_by(data, [PRIMARY_BASELINE, PRIMARY], "arm")
    sec.tables["primary_summary"] = desc
    sec.tables["primary_status"] = status_counts(data, "arm")
    sec.notes.append(
        "ITT children whose score is observed, missing (no score, visit due) or not yet "
        "reached (no score, visit not yet due: neither missing nor imputed)."
    )
    if closed:
        try:
            result = stats.compare_arms(
                order_arms(data, definition),
                outcome=PRIMARY,
                arm="arm",
                baseline=PRIMARY_BASELINE,
                covariates=["site"],
                cluster="family_id",
                method="ancova",
            )
            row = comparison_row("primary: ANCOVA, robust SE by family", result, randomised)
        except stats.StatsInputError as exc:
            row = {"analysis": "primary: ANCOVA", "method": f"not estimable: {exc}"}
        sec.tables["primary_analysis"] = pd.DataFrame([row])
        sec.notes += [
            (direction or direction_note(definition))
            + " A negative estimate means fewer difficulties with the intervention.",
            "ANCOVA adjusted for baseline SDQ total difficulties and site, robust SE by family, "
            "95% CI. Children without a baseline SDQ are analysed with their baseline set to "
            "the mean and a missing-indicator term (White & Thompson, Stat Med "
            "2005;24:993-1007); n_baseline_missing counts them.",
            "Per arm: n_randomised (children randomised), n_outcome (with the 30-month SDQ), "
            "n_analysed (in the model).",
        ]
    else:
        x = data[PRIMARY].dropna().astype(float)
        se = float(x.std(ddof=1) / len(x) ** 0.5) if len(x) > 1 else float("nan")
        mean = float(x.mean()) if len(x) else float("nan")
        sec.tables["primary_analysis"] = pd.DataFrame(
            [
                {
                    "analysis": "pooled mean at 30 months (open report: no comparison)",
                    "n_randomised": n_randomised,
                    "n_outcome": len(x),
                    "n_analysed": len(x),
                    "estimate": mean,
                    "lower": mean - 1.96 * se,
                    "upper": mean + 1.96 * se,
                }
            ]
        )
        sec.notes.append("Open report: pooled over arms; the comparison is in the closed report.")
    return sec
