"""The one definition of every analysis dataset's columns: name, dtype and meaning.

Each extract builds its DataFrame through :func:`frame`, which casts every column to
its documented dtype and refuses a column that is not documented, and
``docs/analysis-datasets.md`` is rendered from the same tuples (:func:`render`), so
the data dictionary cannot drift from what the functions return.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

#: dtypes used (pandas names): non-null ints/bools use numpy dtypes, nullable ones the
#: pandas extension dtypes; strings are ``string`` (missing = ``<NA>``); dates ``datetime64[ns]``.
DTYPES = ("string", "int64", "Int64", "float64", "bool", "boolean", "datetime64[ns]")

#: the competing-event code of each permanence outcome (0 = censored)
PERMANENCE_EVENT_CODES: dict[str, int] = {
    "return_home": 1,
    "adoption": 2,
    "kinship": 3,
    "long_term_foster": 4,
    "other": 5,
}


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str
    description: str

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:  # a programming error
            raise ValueError(f"column {self.name}: dtype {self.dtype!r} not in {DTYPES}")


@dataclass(frozen=True)
class Dataset:
    """One extract: its function, what a row is, its columns (and, for the wide scores,
    the pattern and dtype of the columns that depend on the data)."""

    name: str
    row: str
    summary: str
    columns: tuple[Column, ...]
    pattern: str | None = None
    pattern_dtype: str | None = None
    pattern_description: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def dtype_of(self, name: str) -> str:
        for c in self.columns:
            if c.name == name:
                return c.dtype
        if self.pattern is not None and self.pattern_dtype and re.fullmatch(self.pattern, name):
            return self.pattern_dtype
        raise KeyError(f"{self.name}: column {name!r} is not documented")


def _c(name: str, dtype: str, description: str) -> Column:
    return Column(name, dtype, description)


# --------------------------------------------------------------------------- shared columns

CHILD_ID = _c("child_id", "string", "The child's trial ID (e.g. `GLA-0001-1-X`).")
FAMILY_ID = _c("family_id", "string", "The family's trial ID: the unit of randomisation.")
SITE = _c("site", "string", "Site code (`GLA`, `CRO`).")
ARM = _c(
    "arm",
    "string",
    "Allocated arm code for unblinded roles; for blinded roles (statistician) the "
    "family's masked code (`allocations.masked_code`: constant per family, carries no "
    "arm information). The masking is the one the services apply.",
)
ARM_MASKED = _c("arm_masked", "bool", "True when `arm` is the masked code (blinded role).")
RANDOMISED_ON = _c("randomised_on", "datetime64[ns]", "Date of the family's allocation (UTC).")
ENTERED_CARE_ON = _c("entered_care_on", "datetime64[ns]", "Date the child entered care.")
END_OF_FOLLOW_UP = _c(
    "end_of_follow_up",
    "datetime64[ns]",
    "The earliest of: withdrawal from follow-up or from data use, loss to follow-up "
    "(the last contact when recorded, else the date it was declared), the end of the "
    "child's last scheduled visit window, and the censoring date (`as_of`).",
)

_KEYS = (CHILD_ID, FAMILY_ID, SITE, ARM, ARM_MASKED)

CHILDREN = Dataset(
    "children",
    "one per child (not voided) of a randomised family",
    "Who was randomised, when, to what, with the stratification factors and analysis sets.",
    (
        *_KEYS,
        _c("arm_label", "string", "Arm name for unblinded roles; missing for blinded roles."),
        _c("stratum", "string", "The stratum key recorded at randomisation."),
        _c(
            "youngest_age_band",
            "string",
            "Stratification factor recorded at randomisation: age band of the family's "
            "youngest child at entry to care.",
        ),
        _c(
            "family_size",
            "string",
            "Stratification factor recorded at randomisation: children in the family (`1`, `2+`).",
        ),
        _c("sex", "string", "`female`, `male` or `unknown`."),
        _c(
            "age_at_entry_months",
            "int64",
            "Completed calendar months from birth to entry to care (as randomisation computes it).",
        ),
        _c("age_at_entry_days", "int64", "Days from birth to entry to care."),
        ENTERED_CARE_ON,
        RANDOMISED_ON,
        _c(
            "joined_after_randomisation",
            "bool",
            "The child joined the family after it was randomised (shares its allocation).",
        ),
        END_OF_FOLLOW_UP,
        _c(
            "end_of_follow_up_reason",
            "string",
            "Which date `end_of_follow_up` is: `withdrawal`, `lost`, `schedule_end` or `as_of`.",
        ),
        _c(
            "itt",
            "bool",
            "Intention-to-treat set: randomised, family and child not voided, and not "
            "withdrawn from use of data (by `as_of`).",
        ),
        _c(
            "per_protocol",
            "bool",
            "Per-protocol set: in the ITT set, not excluded after randomisation, no major "
            "protocol deviation for the child or its whole family, and not withdrawn from "
            "the intervention (all by `as_of`).",
        ),
        _c(
            "excluded_post_randomisation",
            "bool",
            "A live post-randomisation exclusion of the child or its whole family, "
            "identified by `as_of` (the allocation stands).",
        ),
        _c(
            "major_deviation",
            "bool",
            "A live major protocol deviation of the child or its whole family by `as_of`.",
        ),
        _c(
            "withdrawn_level",
            "string",
            "The widest live withdrawal by `as_of`: `intervention`, `follow_up` or `data`; "
            "missing when none.",
        ),
        _c("withdrawn_on", "datetime64[ns]", "Date of that withdrawal."),
        _c(
            "lost_to_follow_up",
            "bool",
            "A live loss to follow-up declared by `as_of`.",
        ),
        _c(
            "intervention_received",
            "boolean",
            "Receipt of the allocated intervention (the family's live record, "
            "`noim intervention record`; the same for every child of the family): true when "
            "the allocated service started by `as_of`, false when it was not received; "
            "missing when not recorded or when it started after `as_of`.",
        ),
        _c(
            "intervention_started_on",
            "datetime64[ns]",
            "Date the allocated service started (first session or contact) when "
            "`intervention_received` is true; missing for blinded roles (the time from "
            "randomisation to the start of the service could reveal the arm).",
        ),
        _c(
            "intervention_not_received_reason",
            "string",
            "Why it was not received when `intervention_received` is false: `declined`, "
            "`not_engaged`, `left_care`, `moved_away`, `service_unavailable`, `withdrawn` or "
            "`other` (the free-text details are not extracted).",
        ),
    ),
)

PERMANENCE = Dataset(
    "permanence",
    "one per randomised child, except those withdrawn from use of data",
    "Time to the first permanence decision, coded for competing-risks analysis "
    "(`stats.cumulative_incidence(df, 'duration', 'event', group='arm')`).",
    (
        *_KEYS,
        RANDOMISED_ON,
        ENTERED_CARE_ON,
        _c(
            "time_origin",
            "datetime64[ns]",
            "The child's time origin, where `duration` starts: the latest of the family's "
            "randomisation, the child's entry to care and, for a child who joined the family "
            "after its randomisation, the date it joined the trial (its first live "
            "participation consent dated by `as_of`). So no duration starts before the "
            "child's birth, its entry to care or its joining.",
        ),
        _c(
            "time_origin_reason",
            "string",
            "Which date `time_origin` is: `randomisation`, `entry_to_care` (the child entered "
            "care after the family was randomised, e.g. a sibling born later) or "
            "`joined_trial` (the child joined later still).",
        ),
        END_OF_FOLLOW_UP,
        _c(
            "decision_on",
            "datetime64[ns]",
            "Date of the first permanence decision (the earliest live legal event whose "
            "type has a permanence outcome, `noim.domain.permanence.summarise`) if it is on "
            "or before `end_of_follow_up`; else missing.",
        ),
        _c("decision_type", "string", "Event type code of that decision; missing if censored."),
        _c(
            "outcome",
            "string",
            "Its outcome: `return_home`, `adoption`, `kinship` (incl. special guardianship), "
            "`long_term_foster` or `other`; missing if censored.",
        ),
        _c(
            "event",
            "int64",
            "Competing-event code: 0 censored, 1 return home, 2 adoption, 3 kinship / "
            "special guardianship, 4 long-term foster care, 5 other.",
        ),
        _c(
            "duration",
            "int64",
            "Days from `time_origin` to the decision (event) or to `end_of_follow_up` "
            "(censored); never negative: a decision before the time origin gives 0, and so "
            "does a child whose follow-up ends before its time origin (censored at 0).",
        ),
        _c(
            "days_from_entry",
            "int64",
            "Days from entry to care to the decision or to `end_of_follow_up` (censored).",
        ),
        _c(
            "decided_before_randomisation",
            "bool",
            "The first permanence decision is dated before randomisation.",
        ),
    ),
)

SCORES_LONG = Dataset(
    "scores",
    "one per child × timepoint × instrument × respondent × scale (`wide=False`, the default)",
    "Derived scale scores of live assessments dated by `as_of`. When a child has more "
    "than one live assessment of the same instrument at the same timepoint by the same "
    "respondent type, one is kept: completed before not completed, then the earliest "
    "`assessed_on`, then the first recorded.",
    (
        *_KEYS,
        _c("timepoint", "string", "Timepoint code (`baseline`, `15m`, `30m`)."),
        _c("instrument", "string", "Instrument code (`sdq`, `bitsea`, `pedsql`)."),
        _c("scale", "string", "Scale code as scored (e.g. `total_difficulties`)."),
        _c("score", "float64", "The derived score; missing when the scoring rules give none."),
        _c("assessed_on", "datetime64[ns]", "Date of the assessment."),
        _c("respondent", "string", "Respondent type (`carer`, `birth_parent`, ...)."),
        _c("out_of_window", "bool", "The assessment was outside its timepoint's window."),
        _c("completed", "bool", "The form was marked complete."),
        _c("assessment_id", "int64", "Internal id of the assessment kept."),
    ),
)

SCORES_WIDE = Dataset(
    "scores_wide",
    "one per child (`scores(..., wide=True)`), the same children as `permanence`",
    "The long scores pivoted: one column per instrument, scale and timepoint observed, "
    "for one respondent type (`respondent=`, default `carer`).",
    (*_KEYS,),
    pattern=r"[a-z0-9]+(_[a-z0-9]+)*",
    pattern_dtype="float64",
    pattern_description=(
        "The score (e.g. `sdq_total_difficulties_baseline`, `sdq_total_difficulties_30m`), "
        "missing when not assessed. Columns are ordered by instrument, scale and the "
        "timepoints' order in the trial definition."
    ),
)

PLACEMENTS = Dataset(
    "placements",
    "one per randomised child, except those withdrawn from use of data",
    "Placement stability up to the end of follow-up (live placements starting by "
    "`end_of_follow_up`).",
    (
        *_KEYS,
        ENTERED_CARE_ON,
        END_OF_FOLLOW_UP,
        _c("n_placements", "int64", "Placements started by `end_of_follow_up`."),
        _c(
            "moves",
            "int64",
            "Placement moves: every placement after the first (`noim.domain.permanence.moves`).",
        ),
        _c("two_or_more_moves", "bool", "`moves >= 2`."),
        _c(
            "last_placement_end",
            "datetime64[ns]",
            "End of the last placement, if it ended by `end_of_follow_up`; else missing.",
        ),
        _c(
            "days_in_care",
            "int64",
            "Days from entry to care to the end of the last placement, or to "
            "`end_of_follow_up` when it is still open (or ends later).",
        ),
        _c(
            "days_placed",
            "int64",
            "Days actually in placements (each placement from its start to its end, cut at "
            "`end_of_follow_up`), for use as exposure in rate models.",
        ),
    ),
)

REENTRIES = Dataset(
    "reentries",
    "one per randomised child, except those withdrawn from use of data",
    "Returns home and re-entries to care (events by `end_of_follow_up`), as "
    "`noim.domain.permanence.summarise` derives them.",
    (
        *_KEYS,
        END_OF_FOLLOW_UP,
        _c("returned_home", "bool", "At least one actual return home (kind `care_status`)."),
        _c("returned_home_on", "datetime64[ns]", "Date of the first return home."),
        _c("n_returns_home", "int64", "Returns home recorded."),
        _c(
            "reentered",
            "bool",
            "A re-entry to care (`any.reentry`) ending a recorded return home.",
        ),
        _c("reentered_on", "datetime64[ns]", "Date of the first such re-entry."),
        _c(
            "days_to_reentry",
            "Int64",
            "Days from the return home it ended to that re-entry; missing when none.",
        ),
        _c(
            "duration",
            "Int64",
            "Time to re-entry for survival analysis: `days_to_reentry` when re-entered, else "
            "days from the last return home to `end_of_follow_up`; missing when never home.",
        ),
        _c("event", "int64", "1 re-entered after a return home, 0 otherwise."),
    ),
)

COSTS = Dataset(
    "costs",
    "one per randomised child, except those withdrawn from use of data",
    "Service costs: live service use whose period starts by `end_of_follow_up`, each "
    "record's quantity × its unit cost (records are not pro-rated). Unit costs carry "
    "no category, so costs are totals per child. For blinded roles, the services the "
    "trial definition marks as revealing the arm (`[economics] arm_revealing_services`) "
    "are left out of every column: costs by arm, with those services, are an unblinded "
    "analysis.",
    (
        *_KEYS,
        END_OF_FOLLOW_UP,
        _c(
            "n_records",
            "int64",
            "Service-use records counted (blinded roles: without the arm-revealing services).",
        ),
        _c(
            "total_cost",
            "float64",
            "Sum of quantity × unit cost (0 when no records; blinded roles: without the "
            "arm-revealing services).",
        ),
        _c(
            "arm_revealing_records",
            "Int64",
            "Records of the arm-revealing services among `n_records`; missing for blinded roles.",
        ),
        _c(
            "arm_revealing_cost",
            "float64",
            "Their cost, included in `total_cost`; missing for blinded roles.",
        ),
        _c(
            "currency",
            "string",
            "ISO currency of the unit costs used (one per dataset; missing when no records).",
        ),
        _c(
            "price_years",
            "string",
            "Price year(s) of the unit costs used, `;`-separated; missing when no records.",
        ),
    ),
)

DATASETS: tuple[Dataset, ...] = (
    CHILDREN,
    PERMANENCE,
    SCORES_LONG,
    SCORES_WIDE,
    PLACEMENTS,
    REENTRIES,
    COSTS,
)


# --------------------------------------------------------------------------- building frames


def _cast(values: Any, dtype: str) -> pd.Series:
    if dtype == "datetime64[ns]":
        if isinstance(values, pd.Series | np.ndarray) and values.dtype.kind == "M":
            return pd.Series(values).astype("datetime64[ns]")
        days = np.array(list(values), dtype="datetime64[D]")  # datetime.date / None -> NaT
        return pd.Series(days.astype("datetime64[ns]"))
    if dtype == "string":
        return pd.Series(values, dtype=object).astype("string")
    return pd.Series(values).astype(dtype)


def frame(dataset: Dataset, data: Mapping[str, Any], extra: Sequence[str] = ()) -> pd.DataFrame:
    """A DataFrame of ``dataset``'s columns (in order, then ``extra``), each cast to its dtype.

    ``data`` maps every documented column (and every name in ``extra``) to its values.
    """
    names = [*dataset.names, *extra]
    missing = [n for n in names if n not in data]
    unknown = [n for n in data if n not in names]
    if missing or unknown:  # a programming error
        raise KeyError(f"{dataset.name}: missing columns {missing}, undocumented {unknown}")
    out = pd.DataFrame({n: _cast(data[n], dataset.dtype_of(n)) for n in names})
    out.index = pd.RangeIndex(len(out))
    return out


def empty_values(dataset: Dataset) -> dict[str, list[Any]]:
    return {n: [] for n in dataset.names}


def days(later: date, earlier: date) -> int:
    return (later - earlier).days


# --------------------------------------------------------------------------- the data dictionary

_HEADER = """\
# Analysis datasets

Generated from the column definitions in `noim/extract/_columns.py` by
`python -m noim.extract > docs/analysis-datasets.md`; a test fails when this file
is out of date or when a function returns other columns or dtypes than listed here.

Every function takes `(db, actor, *, as_of=None, freeze=None)` and returns a pandas
DataFrame:

```python
from datetime import date

from noim import extract

df = extract.permanence(db, actor, as_of=date(2026, 6, 30))
```

* **Who may extract.** Roles with the `analyse` capability: `statistician` (blinded),
  `unblinded_statistician` and `administrator`. Others (coordinators, researchers,
  data managers, DMC members) are refused with `PermissionDenied`.
* **Blinding.** Blinded roles get the family's masked code in `arm` (and no arm label);
  unblinded roles get the arm code. Arm columns are never left out, so the same
  scripts run blinded and unblinded.
* **Censoring date.** `as_of` (default: today) is the date the data are read as of:
  allocations, withdrawals, losses, exclusions, deviations, legal events, placements,
  assessments and service use dated after it are ignored, and follow-up ends on it at
  the latest.
* **Data freezes.** `freeze=ID` (instead of `as_of`) returns the dataset stored by data
  freeze `ID` (`noim freeze create`): the same columns and dtypes, the data as of the
  freeze's date, whatever changed since; blinding and site scope are applied when it is
  read, so blinded roles get the same masked codes as from live data. See
  [data-freezes.md](data-freezes.md).
* **Who is in.** Every child (not voided) of a family randomised by `as_of`. Children
  withdrawn from use of their data appear only in `children` (flagged, outside the ITT
  set); every other dataset leaves them out. Dates of birth are never extracted
  (identifiable); `age_at_entry_*` are given instead.
* **Queries.** Each function runs a fixed number of set-based SQL statements, whatever
  the number of families.
* **dtypes.** `string` (missing `<NA>`), `int64` / `bool` (never missing), `Int64` /
  `boolean` (may be missing), `float64` (missing `NaN`), `datetime64[ns]` (missing `NaT`).
"""


_OPERATIONAL_HEADER = """
# Operational datasets

What the interim reports read besides the analysis datasets (`noim.extract.operations`):
one row per record of the screening log, the follow-up visits, the data queries, the
serious adverse events, the protocol deviations and the exits (withdrawals and losses to
follow-up).  Same calling convention (`as_of`, `freeze`, the `analyse` capability), each
built by one set-based SQL statement and stored by every data freeze.  They have **no arm
column** (reports take a child's arm from `children`); site-scoped readers get their sites'
rows.  Free text the reports do not show (SAE and deviation descriptions, query messages,
screening references) is not extracted.

`extract.bundle(db, actor, names, as_of=... | freeze=...)` reads several datasets (analysis
and operational) together: live in one read transaction, or from one freeze; the interim
reports read everything through it.
"""


def _section(ds: Dataset, call: str) -> list[str]:
    parts = [f"\n## `{ds.name}`\n\n`{call}`: {ds.row}.\n\n{ds.summary}\n"]
    parts.append("\n| column | dtype | meaning |\n|---|---|---|\n")
    for c in ds.columns:
        parts.append(f"| `{c.name}` | `{c.dtype}` | {c.description} |\n")
    if ds.pattern is not None:
        parts.append(
            f"| `{{instrument}}_{{scale}}_{{timepoint}}` | `{ds.pattern_dtype}` "
            f"| {ds.pattern_description} |\n"
        )
    return parts


def render() -> str:
    """The text of docs/analysis-datasets.md."""
    from noim.extract.operations import OPERATIONAL

    parts = [_HEADER]
    for ds in DATASETS:
        call = (
            "extract.scores(..., wide=True)"
            if ds.name == "scores_wide"
            else f"extract.{ds.name}(...)"
        )
        parts += _section(ds, call)
    parts.append(
        "\n## Competing-event codes (`permanence.event`)\n\n| code | outcome |\n|---|---|\n"
        "| 0 | censored |\n"
        + "".join(f"| {code} | `{name}` |\n" for name, code in PERMANENCE_EVENT_CODES.items())
    )
    parts.append(_OPERATIONAL_HEADER)
    for ds in OPERATIONAL:
        parts += _section(ds, f"extract.{ds.name}(...)")
    return "".join(parts)
