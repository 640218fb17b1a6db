"""Summaries shared by the analysis scripts (``analysis/0*_*.py``) and the interim reports.

Pure functions of the ``noim.extract`` DataFrames: the CONSORT flow counts, the baseline
characteristics table, the primary outcome data and descriptive summaries, and the table row
of an arm comparison.  ``group`` columns hold the arm (allocated or masked codes) or one
pooled level.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from functools import partial
from typing import Any

import pandas as pd

from noim.domain.codes import INTERVENTION_NOT_RECEIVED_LABELS, INTERVENTION_NOT_RECEIVED_REASONS
from noim.domain.trialdef import TrialDefinition
from noim.extract import PERMANENCE_EVENT_CODES, followup

__all__ = [
    "ANALYSED",
    "CAUSES",
    "PRIMARY",
    "PRIMARY_BASELINE",
    "PRIMARY_DUE",
    "PRIMARY_STATUS",
    "RECEIPT_STAGES",
    "SDQ_BASELINE",
    "TIME_AXIS",
    "arm_counts",
    "arm_numbers",
    "baseline_table",
    "comparison_row",
    "direction_note",
    "flow_counts",
    "mean_sd",
    "mean_sd_by",
    "n_pct",
    "not_estimable",
    "not_received_stage",
    "numbers_note",
    "order_arms",
    "outcome_data",
    "receipt_counts",
    "stats_warnings",
    "status_counts",
    "warning_notes",
]

#: the CONSORT row of the children in the primary analysis
ANALYSED = "analysed (ITT, SDQ at 30m; primary analysis)"
#: the primary outcome and its baseline (carer-reported SDQ total difficulties)
PRIMARY = "sdq_total_difficulties_30m"
PRIMARY_BASELINE = "sdq_total_difficulties_baseline"
#: their timepoints, and the columns ``outcome_data`` adds with the visits: each child's
#: status (observed / missing / not yet reached) and whether the primary outcome is due
PRIMARY_TIMEPOINT, BASELINE_TIMEPOINT = "30m", "baseline"
PRIMARY_STATUS, BASELINE_STATUS, PRIMARY_DUE = "primary_status", "baseline_status", "primary_due"

PERMANENCE_LABELS = {
    "return_home": "Return home",
    "adoption": "Adoption",
    "kinship": "Kinship / SGO",
    "long_term_foster": "Long-term foster care",
    "other": "Other",
}
#: event code of the permanence dataset -> label
CAUSES = {code: PERMANENCE_LABELS[name] for name, code in PERMANENCE_EVENT_CODES.items()}
#: the time axis of the permanence figures (durations run from each child's time origin)
TIME_AXIS = "Months from the time origin (randomisation, or the child's later entry)"

SDQ_BASELINE = (
    ("sdq_total_difficulties_baseline", "SDQ total difficulties"),
    ("sdq_emotional_baseline", "SDQ emotional symptoms"),
    ("sdq_conduct_baseline", "SDQ conduct problems"),
    ("sdq_hyperactivity_baseline", "SDQ hyperactivity"),
    ("sdq_peer_baseline", "SDQ peer problems"),
    ("sdq_prosocial_baseline", "SDQ prosocial"),
)


def outcome_data(
    kids: pd.DataFrame,
    wide: pd.DataFrame,
    visits: pd.DataFrame | None = None,
    as_of: date | None = None,
) -> pd.DataFrame:
    """One row per child in the ITT set: the wide scores (carer) with sex, site, arm and the
    analysis-set flags; the primary outcome and its baseline columns always present.

    With the ``visits`` dataset and the as-of date, also each child's ``primary_status`` and
    ``baseline_status`` (``observed``, ``missing`` or ``not yet reached``:
    ``noim.extract.followup``) and ``primary_due`` (the primary outcome is observed or its
    visit is due: the children multiple imputation may impute)."""
    cols = ["child_id", "sex", "per_protocol", "age_at_entry_months"]
    data = kids.loc[kids["itt"], cols].merge(wide, on="child_id", how="left")
    for column in (PRIMARY, PRIMARY_BASELINE):
        if column not in data.columns:
            data[column] = float("nan")
    # the children's own arm and site (the wide scores hold them only for scored children)
    extra = kids[["child_id", "family_id", "site", "arm"]]
    data = data.drop(columns=[c for c in ("family_id", "site", "arm") if c in data.columns])
    data = data.merge(extra, on="child_id", how="left").reset_index(drop=True)
    if visits is not None and as_of is not None:
        for name, column, timepoint in (
            (PRIMARY_STATUS, PRIMARY, PRIMARY_TIMEPOINT),
            (BASELINE_STATUS, PRIMARY_BASELINE, BASELINE_TIMEPOINT),
        ):
            data[name] = followup.outcome_status(data, column, visits, timepoint, as_of)
        data[PRIMARY_DUE] = data[PRIMARY_STATUS] != followup.NOT_YET_REACHED
    return data


def status_counts(data: pd.DataFrame, group: str | None) -> pd.DataFrame:
    """Children whose primary outcome (and baseline) is observed, missing or not yet reached,
    by ``group`` (``outcome_data(..., visits, as_of)``): one row per variable and level."""
    keys = data[group] if group else pd.Series("all", index=data.index)
    rows = []
    for variable, name in ((PRIMARY_BASELINE, BASELINE_STATUS), (PRIMARY, PRIMARY_STATUS)):
        for level in sorted(keys.unique().tolist()):
            part = data.loc[keys == level, name]
            rows.append(
                {
                    "variable": variable,
                    "arm": level,
                    **{s.replace(" ", "_"): int((part == s).sum()) for s in followup.STATUSES},
                }
            )
    columns = ["variable", "arm", *(s.replace(" ", "_") for s in followup.STATUSES)]
    return pd.DataFrame(rows, columns=columns)


def flow_counts(
    kids: pd.DataFrame,
    scores: pd.DataFrame,
    wide: pd.DataFrame,
    outcomes: pd.DataFrame,
    group: str | None,
) -> dict[Any, dict[str, int]]:
    """CONSORT counts of children after randomisation: level of ``group`` -> stage -> n.

    Followed up = an SDQ (carer) at that timepoint; analysed = in the ITT set with the
    primary outcome observed (``outcomes`` is ``outcome_data(...)``): the primary analysis
    keeps children without a baseline (missing-indicator method).
    When ``outcomes`` holds the statuses (``outcome_data(..., visits, as_of)``), the ITT
    children whose primary outcome is missing (visit due) and not yet reached (visit not yet
    due) are counted apart.
    Receipt of the allocated intervention comes from the recorded receipts
    (``receipt_counts``), in children and in families.
    """
    keys = kids[group] if group else pd.Series("all", index=kids.index)
    levels = sorted(keys.unique().tolist()) if len(kids) else ["all"]
    arm_of = dict(zip(kids["child_id"], keys, strict=True))
    sdq = scores[
        (scores["instrument"] == "sdq")
        & (scores["scale"] == "total_difficulties")
        & (scores["respondent"] == "carer")
    ]
    rows: dict[str, pd.Series] = {}
    rows["families randomised"] = kids.groupby(keys)["family_id"].nunique()
    rows["children randomised"] = kids.groupby(keys).size()
    rows.update(receipt_counts(kids, keys))
    rows["joined the family after randomisation"] = kids.groupby(keys)[
        "joined_after_randomisation"
    ].sum()
    rows["excluded after randomisation"] = kids.groupby(keys)["excluded_post_randomisation"].sum()
    rows["major protocol deviation"] = kids.groupby(keys)["major_deviation"].sum()
    for level in ("intervention", "follow_up", "data"):
        hit = kids["withdrawn_level"].fillna("") == level
        rows[f"withdrawn from {level.replace('_', ' ')}"] = hit.groupby(keys).sum()
    rows["lost to follow-up"] = kids.groupby(keys)["lost_to_follow_up"].sum()
    prefix = "sdq_total_difficulties_"  # the wide columns follow the trial's timepoint order
    timepoints = [c.removeprefix(prefix) for c in wide.columns if c.startswith(prefix)]
    for timepoint in timepoints:
        seen = sdq.loc[sdq["timepoint"] == timepoint, "child_id"].drop_duplicates()
        rows[f"followed up at {timepoint} (SDQ)"] = seen.map(arm_of).value_counts()
    rows["in the ITT set"] = kids.groupby(keys)["itt"].sum()
    rows["in the per-protocol set"] = kids.groupby(keys)["per_protocol"].sum()
    if PRIMARY_STATUS in outcomes.columns:  # ITT children: not yet due is not missing
        status = outcomes[PRIMARY_STATUS]
        arms = outcomes["child_id"].map(arm_of)
        for label, value in (
            ("ITT, 30m outcome missing (visit due)", followup.MISSING),
            ("ITT, 30m outcome not yet reached (visit not yet due)", followup.NOT_YET_REACHED),
        ):
            rows[label] = arms[status == value].value_counts()
    complete = outcomes.dropna(subset=[PRIMARY])
    rows[ANALYSED] = complete["child_id"].map(arm_of).value_counts()
    return {lv: {stage: int(s.get(lv, 0)) for stage, s in rows.items()} for lv in levels}


#: CONSORT stages of intervention receipt: (children row, families row, receipt status)
RECEIPT_STAGES = (
    ("received the allocated intervention", "families received the allocated intervention"),
    (
        "did not receive the allocated intervention",
        "families did not receive the allocated intervention",
    ),
    ("receipt not yet recorded", "families with receipt not yet recorded"),
)


def not_received_stage(reason: str) -> str:
    """The CONSORT row counting the families that did not receive it for ``reason`` (a code)."""
    label = INTERVENTION_NOT_RECEIVED_LABELS.get(reason, reason)
    return f"did not receive the allocated intervention: {label} (families)"


def receipt_counts(kids: pd.DataFrame, keys: pd.Series) -> dict[str, pd.Series]:
    """CONSORT rows of intervention receipt from the recorded receipts (``children``
    dataset): children and families that received it, did not (and why, in families),
    and whose receipt is not yet recorded, by level of ``keys``."""
    if "intervention_received" in kids.columns:
        got = kids["intervention_received"].astype("boolean")
        why = kids["intervention_not_received_reason"].astype("string")
    else:  # a freeze made before receipts were recorded: nothing recorded
        got = pd.Series(pd.NA, index=kids.index, dtype="boolean")
        why = pd.Series(pd.NA, index=kids.index, dtype="string")
    status = [got.fillna(False).astype(bool), (~got).fillna(False).astype(bool), got.isna()]
    families = kids["family_id"]
    rows: dict[str, pd.Series] = {}
    for (child_row, family_row), hit in zip(RECEIPT_STAGES, status, strict=True):
        rows[child_row] = hit.groupby(keys).sum()
        rows[family_row] = families[hit].groupby(keys[hit]).nunique()
    not_received = status[1]
    present = set(why[not_received].dropna().tolist())
    for reason in [r for r in INTERVENTION_NOT_RECEIVED_REASONS if r in present] + sorted(
        present - set(INTERVENTION_NOT_RECEIVED_REASONS)
    ):
        hit = not_received & (why == reason).fillna(False).astype(bool)
        rows[not_received_stage(reason)] = families[hit].groupby(keys[hit]).nunique()
    return rows


def mean_sd(values: pd.Series) -> str:
    x = values.dropna().astype(float)
    if len(x) == 0:
        return "–"
    sd = f"{x.std(ddof=1):.1f}" if len(x) > 1 else "–"
    return f"{x.mean():.1f} ({sd}) [{len(x)}]"


def n_pct(hit: pd.Series) -> str:
    n, total = int(hit.sum()), len(hit)
    return f"{n} ({100 * n / total:.0f}%)" if total else "0"


def _share(part: pd.DataFrame, column: str, level: Any) -> str:
    return n_pct(part[column] == level)


def _mean_sd_of(part: pd.DataFrame, column: str) -> str:
    return mean_sd(part[column])


def baseline_table(kids: pd.DataFrame, wide: pd.DataFrame, by_arm: bool) -> pd.DataFrame:
    """Baseline characteristics of the ITT set: one column per arm (``by_arm``) and ``all``."""
    kids = kids[kids["itt"]].reset_index(drop=True)
    drop = [c for c in ("family_id", "site", "arm", "arm_masked") if c in wide.columns]
    data = kids.merge(wide.drop(columns=drop), on="child_id", how="left")
    groups: dict[str, pd.DataFrame] = {}
    if by_arm:
        groups = {str(a): data[data["arm"] == a] for a in sorted(data["arm"].unique().tolist())}
    groups["all"] = data
    rows: list[dict[str, str]] = []

    def add(label: str, cell: Callable[[pd.DataFrame], str]) -> None:
        rows.append({"characteristic": label, **{g: cell(part) for g, part in groups.items()}})

    add("children, n", lambda p: str(len(p)))
    add("families, n", lambda p: str(p["family_id"].nunique()))
    add("age at entry to care (months), mean (SD) [n]", lambda p: mean_sd(p["age_at_entry_months"]))
    for column, label in (
        ("sex", "sex"),
        ("site", "site"),
        ("youngest_age_band", "youngest child's age band (stratum)"),
        ("family_size", "children in family (stratum)"),
    ):
        for level in sorted(data[column].dropna().unique().tolist()):
            add(f"{label}: {level}, n (%)", partial(_share, column=column, level=level))
    for column, label in SDQ_BASELINE:
        if column in data.columns:
            add(f"{label}, mean (SD) [n]", partial(_mean_sd_of, column=column))
    return pd.DataFrame(rows)


def order_arms(df: pd.DataFrame, definition: TrialDefinition | None) -> pd.DataFrame:
    """``df`` with ``arm`` as a pandas Categorical in the trial's analysis order: the control
    arm first (``TrialDefinition.arm_order``), so every ``noim.stats`` comparison takes it as
    the reference and effects are intervention minus control (NIM - SAU), ratios
    intervention / control.

    Unchanged when ``df`` has no ``arm`` column, when the definition names no control arm,
    or when ``arm`` holds other values than the trial's arm codes (masked codes for blinded
    roles).
    """
    if definition is None or definition.control_arm is None or "arm" not in df.columns:
        return df
    order = definition.arm_order()
    if not set(df["arm"].dropna().tolist()) <= set(order):
        return df
    return df.assign(arm=pd.Categorical(df["arm"].astype(object), categories=order))


def direction_note(definition: TrialDefinition | None) -> str:
    """The sentence every table of arm effects carries: which arm is subtracted from which."""
    control = definition.control_arm if definition is not None else None
    if definition is None or control is None:
        return (
            "The trial definition names no control arm: each effect is the second arm minus "
            "(or over) the first in sorted order, as the comparison column says."
        )
    others = [a.code for a in definition.arms if a is not control]
    minus = ", ".join(f"{code} - {control.code}" for code in others)
    over = ", ".join(f"{code} / {control.code}" for code in others)
    return (
        f"Effects are intervention minus control ({minus}), ratios intervention over control "
        f"({over}); the control arm, {control.code}, is named in the trial definition."
    )


def arm_counts(frame: pd.DataFrame, rows: pd.Series | None = None) -> dict[Any, int]:
    """Rows of ``frame`` per arm (only the rows where ``rows`` is true, when given)."""
    part = frame if rows is None else frame[rows.to_numpy(dtype=bool)]
    counts = part["arm"].value_counts()
    return {level: int(counts.get(level, 0)) for level in set(frame["arm"].dropna().tolist())}


def arm_numbers(
    randomised: Mapping[Any, int],
    with_outcome: Mapping[Any, int],
    analysed: Mapping[Any, int],
    levels: Sequence[Any],
) -> dict[str, int]:
    """The per-arm numbers every primary and secondary table states, as columns
    ``n_randomised_<arm>``, ``n_outcome_<arm>``, ``n_analysed_<arm>`` (``levels`` in the
    order of the comparison: intervention, then control)."""
    out: dict[str, int] = {}
    for what, counts in (
        ("randomised", randomised),
        ("outcome", with_outcome),
        ("analysed", analysed),
    ):
        for level in levels:
            out[f"n_{what}_{level}"] = int(counts.get(level, 0))
    return out


def numbers_note(
    randomised: Mapping[Any, int],
    with_outcome: Mapping[Any, int],
    analysed: Mapping[Any, int],
    levels: Sequence[Any],
    outcome: str = "the outcome",
) -> str:
    """``arm_numbers`` as a sentence, for tables with one set of numbers."""
    parts = [
        f"{level} {randomised.get(level, 0)} / {with_outcome.get(level, 0)} / "
        f"{analysed.get(level, 0)}"
        for level in levels
    ]
    return f"Children randomised / with {outcome} / analysed, per arm: " + "; ".join(parts) + "."


def comparison_row(
    analysis: str, result: Any, randomised: Mapping[Any, int] | None = None
) -> dict[str, Any]:
    """A ``stats.ArmComparison`` as one table row: the direction (``comparison``, e.g.
    ``NIM - SAU``), and per arm (comparison arm first) the children randomised (from
    ``randomised``, else the rows with an arm in the data given), with the outcome and
    analysed."""
    ref, cmp_ = list(result.n)
    levels = [cmp_, ref]
    numbers = arm_numbers(
        randomised if randomised is not None else {},
        result.n_outcome,
        result.n,
        levels,
    )
    if randomised is None:
        numbers = {k: v for k, v in numbers.items() if not k.startswith("n_randomised_")}
    return {
        "analysis": analysis,
        "method": result.method,
        "comparison": result.contrast,
        **numbers,
        "estimate": result.estimate,
        "lower": result.ci[0],
        "upper": result.ci[1],
        "se": result.se,
        "p": result.pvalue,
        "effect_size": result.effect_size,
        "n_baseline_missing": sum(result.n_baseline_missing.values()),
        "n_dropped": result.n_dropped,
    }


def not_estimable(analysis: str, error: Exception) -> dict[str, Any]:
    """A table row for an analysis the data do not allow, with the reason."""
    return {"analysis": analysis, "method": f"not estimable: {error}"}


def mean_sd_by(data: pd.DataFrame, columns: Sequence[str], group: str | None) -> pd.DataFrame:
    """n, mean, SD, median of numeric ``columns`` by ``group`` (or over every row)."""
    rows = []
    keys = data[group] if group else pd.Series("all", index=data.index)
    for column in columns:
        for level in sorted(keys.unique().tolist()):
            x = data.loc[keys == level, column].dropna().astype(float)
            rows.append(
                {
                    "variable": column,
                    "arm": level,
                    "n": len(x),
                    "mean": x.mean() if len(x) else float("nan"),
                    "sd": x.std(ddof=1) if len(x) > 1 else float("nan"),
                    "median": x.median() if len(x) else float("nan"),
                }
            )
    return pd.DataFrame(rows, columns=["variable", "arm", "n", "mean", "sd", "median"])


def warning_notes(caught: list[warnings.WarningMessage]) -> list[str]:
    """Take the ``noim.stats`` warnings out of ``caught`` as table notes, once each, in order.

    Too few clusters (``FewClustersWarning``) and a Cox coefficient that may be infinite
    (``CoxConvergenceWarning``) belong beside the table they concern ("Warning: ..."); other
    warnings stay in ``caught``.
    """
    from noim.stats import FewClustersWarning
    from noim.stats.cox import CoxConvergenceWarning

    kinds = (FewClustersWarning, CoxConvergenceWarning)
    notes: list[str] = []
    for w in caught:
        if issubclass(w.category, kinds) and f"Warning: {w.message}" not in notes:
            notes.append(f"Warning: {w.message}")
    caught[:] = [w for w in caught if not issubclass(w.category, kinds)]
    return notes


@contextmanager
def stats_warnings() -> Iterator[list[str]]:
    """``with stats_warnings() as notes:`` -- the statistics warnings raised inside become
    ``notes`` (see ``warning_notes``) when the block ends; other warnings are re-issued."""
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield notes
    notes += warning_notes(caught)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
