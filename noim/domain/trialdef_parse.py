"""Reading a trial definition: TOML text -> validated ``TrialDefinition``.

Each section has its own function; all of them report into one ``_Reader`` so
every problem in a file is reported at once, each naming the key path, the
value received and what was expected.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from noim.domain.codes import (
    JURISDICTIONS,
    RANDOMISATION_METHODS,
    RESPONDENT_TYPES,
    TEAM_KINDS,
    TIMEPOINT_ANCHORS,
    UNIT_COST_CODE,
)
from noim.domain.durations import Duration
from noim.domain.exceptions import TrialDefinitionError
from noim.domain.trial_ids import PREFIX_RE
from noim.domain.trialdef import (
    ArmDef,
    EconomicsDef,
    FactorDef,
    FactorLevel,
    LocalAuthorityDef,
    RandomisationDef,
    ScheduledInstrument,
    SiteDef,
    TeamDef,
    TimepointDef,
    TrialDefinition,
    TrialInfo,
)

CODE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}$")
TIMEPOINT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,15}$")
FACTOR_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
INSTRUMENT_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
FACTOR_SOURCES = ("site", "youngest_age_months_at_entry", "children_in_family", "declared")


T = TypeVar("T")
_MISSING = object()


class _Reader:
    """Walks the parsed TOML, collecting every problem with its key path."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, path: str, value: object, expected: str) -> None:
        if value is _MISSING:
            self.problems.append(f"key {path}: missing; expected {expected}")
        else:
            self.problems.append(f"key {path}: got {value!r}; expected {expected}")

    def table(
        self, data: dict[str, Any], key: str, path: str, required: bool = True
    ) -> dict[str, Any]:
        value = data.get(key, _MISSING)
        if value is _MISSING and not required:
            return {}
        if not isinstance(value, dict):
            self.problem(_join(path, key), value, "a table")
            return {}
        return value

    def array(self, data: dict[str, Any], key: str, path: str, required: bool = True) -> list[Any]:
        value = data.get(key, _MISSING)
        if value is _MISSING and not required:
            return []
        if not isinstance(value, list):
            self.problem(_join(path, key), value, "an array")
            return []
        return value

    def value(
        self,
        data: dict[str, Any],
        key: str,
        path: str,
        kind: type[T] | tuple[type, ...],
        expected: str,
        required: bool = True,
        default: Any = None,
        check: Callable[[Any], bool] | None = None,
    ) -> Any:
        value = data.get(key, _MISSING)
        full = _join(path, key)
        if value is _MISSING:
            if required:
                self.problem(full, value, expected)
            return default
        ok = isinstance(value, kind) and not (isinstance(value, bool) and kind in (int, float))
        if ok and check is not None:
            ok = check(value)
        if not ok:
            self.problem(full, value, expected)
            return default
        return value

    def choice(
        self, data: dict[str, Any], key: str, path: str, choices: tuple[str, ...], **kw: Any
    ) -> Any:
        expected = "one of " + ", ".join(repr(c) for c in choices)
        return self.value(data, key, path, str, expected, check=lambda v: v in choices, **kw)

    def duration(
        self, data: dict[str, Any], key: str, path: str, raw: Any = _MISSING
    ) -> Duration | None:
        value = data.get(key, _MISSING) if raw is _MISSING else raw
        expected = "a duration such as '4w', '15m', '2y' or '90d'"
        if value is _MISSING:
            self.problem(_join(path, key), value, expected)
            return None
        try:
            return Duration.parse(value) if isinstance(value, str) else _raise()
        except ValueError:
            self.problem(_join(path, key), value, expected)
            return None

    def unknown_keys(self, data: dict[str, Any], allowed: set[str], path: str) -> None:
        for key in data:
            if key not in allowed:
                self.problems.append(
                    f"key {_join(path, key)}: not a known key; expected one of "
                    + ", ".join(sorted(allowed))
                )


def _raise() -> Duration:
    raise ValueError


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _code(v: str) -> bool:
    return bool(CODE_RE.match(v))


_CODE_EXPECTED = "a code of 1-16 letters, digits or '_' starting with a letter"


def _positive(v: int) -> bool:
    return v > 0


def _non_empty(v: str) -> bool:
    return bool(v.strip())


def _duplicates(codes: list[str], path: str, r: _Reader, what: str) -> None:
    seen: set[str] = set()
    for i, c in enumerate(codes):
        if c == "?":  # already reported as invalid
            continue
        if c in seen:
            r.problem(f"{path}[{i}].code", c, f"a {what} code not used before in {path}")
        seen.add(c)


def parse_definition(
    text: str, source: str = "<string>", *, stored: bool = False
) -> TrialDefinition:
    """Parse and validate a trial definition held in ``text``; report every problem at once.

    ``stored``: the text was read back from a database or a data freeze, where it may predate
    a rule; a definition without ``control = true`` on an arm is then accepted (the control
    arm taken from the teams, or none: ``TrialDefinition.control_arm`` is None), while a new
    definition (``noim init``, ``noim trial validate``) must name it.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TrialDefinitionError(source, [f"not valid TOML: {exc}"]) from None
    r = _Reader()
    r.unknown_keys(
        data,
        {"trial", "sites", "arms", "factors", "randomisation", "timepoints", "economics"},
        "",
    )
    trial = _trial(r, data)
    sites = _sites(r, data)
    arms = _arms(r, data, sites, stored)
    factors = _factors(r, data, sites)
    randomisation = _randomisation(r, data, arms, factors)
    timepoints = _timepoints(r, data)
    economics = _economics(r, data)
    if r.problems:
        raise TrialDefinitionError(source, r.problems)
    return TrialDefinition(
        trial=trial,
        sites=tuple(sites),
        arms=tuple(arms),
        factors=tuple(factors),
        randomisation=randomisation,
        timepoints=tuple(timepoints),
        source=source,
        text=text,
        economics=economics,
    )


def _economics(r: _Reader, data: dict[str, Any]) -> EconomicsDef:
    e = r.table(data, "economics", "", required=False)
    r.unknown_keys(e, {"arm_revealing_services"}, "economics")
    raw = e.get("arm_revealing_services", [])
    expected = "an array of unit-cost codes (lower-case letters, digits, '_', '.', '-')"
    if not isinstance(raw, list) or not all(
        isinstance(c, str) and UNIT_COST_CODE.match(c) for c in raw
    ):
        r.problem("economics.arm_revealing_services", raw, expected)
        return EconomicsDef()
    return EconomicsDef(frozenset(raw))


def _trial(r: _Reader, data: dict[str, Any]) -> TrialInfo:
    t = r.table(data, "trial", "")
    r.unknown_keys(
        t, {"code", "short_name", "title", "registration", "target_families", "sponsor"}, "trial"
    )
    return TrialInfo(
        code=r.value(t, "code", "trial", str, _CODE_EXPECTED, check=_code, default="?"),
        short_name=r.value(
            t, "short_name", "trial", str, "a non-empty short name", check=_non_empty, default="?"
        ),
        title=r.value(t, "title", "trial", str, "a non-empty title", check=_non_empty, default="?"),
        registration=r.value(
            t,
            "registration",
            "trial",
            str,
            "a registry number such as 'NCT02653716' or 'ISRCTN12345678'",
            check=_non_empty,
            default="?",
        ),
        target_families=r.value(
            t,
            "target_families",
            "trial",
            int,
            "a positive whole number",
            required=False,
            check=_positive,
        ),
        sponsor=r.value(t, "sponsor", "trial", str, "a sponsor name", required=False),
    )


def _sites(r: _Reader, data: dict[str, Any]) -> list[SiteDef]:
    sites: list[SiteDef] = []
    raw_sites = r.array(data, "sites", "")
    if not raw_sites:
        r.problem(
            "sites", raw_sites if "sites" in data else _MISSING, "at least one [[sites]] entry"
        )
    for i, s in enumerate(raw_sites):
        p = f"sites[{i}]"
        if not isinstance(s, dict):
            r.problem(p, s, "a table")
            continue
        r.unknown_keys(
            s,
            {
                "code",
                "name",
                "jurisdiction",
                "id_prefix",
                "target_families",
                "requires_care_proceedings",
                "local_authorities",
                "teams",
            },
            p,
        )
        las = []
        for j, la in enumerate(r.array(s, "local_authorities", p)):
            lp = f"{p}.local_authorities[{j}]"
            if not isinstance(la, dict):
                r.problem(lp, la, "a table with code and name")
                continue
            r.unknown_keys(la, {"code", "name"}, lp)
            las.append(
                LocalAuthorityDef(
                    r.value(la, "code", lp, str, _CODE_EXPECTED, check=_code, default="?"),
                    r.value(la, "name", lp, str, "a non-empty name", check=_non_empty, default="?"),
                )
            )
        if "local_authorities" in s and not las:
            r.problem(f"{p}.local_authorities", [], "at least one local authority")
        teams = []
        for j, tm in enumerate(r.array(s, "teams", p, required=False)):
            tp = f"{p}.teams[{j}]"
            if not isinstance(tm, dict):
                r.problem(tp, tm, "a table with code, name and kind")
                continue
            r.unknown_keys(tm, {"code", "name", "kind", "arm"}, tp)
            teams.append(
                TeamDef(
                    r.value(tm, "code", tp, str, _CODE_EXPECTED, check=_code, default="?"),
                    r.value(tm, "name", tp, str, "a non-empty name", check=_non_empty, default="?"),
                    r.choice(tm, "kind", tp, TEAM_KINDS, default="?"),
                    r.value(tm, "arm", tp, str, "an arm code", required=False),
                )
            )
        sites.append(
            SiteDef(
                code=r.value(s, "code", p, str, _CODE_EXPECTED, check=_code, default="?"),
                name=r.value(s, "name", p, str, "a non-empty name", check=_non_empty, default="?"),
                jurisdiction=r.choice(s, "jurisdiction", p, JURISDICTIONS, default="?"),
                id_prefix=r.value(
                    s,
                    "id_prefix",
                    p,
                    str,
                    "1-3 capital letters used to start trial IDs",
                    check=lambda v: bool(PREFIX_RE.match(v)),
                    default="?",
                ),
                target_families=r.value(
                    s,
                    "target_families",
                    p,
                    int,
                    "a positive whole number",
                    required=False,
                    check=_positive,
                ),
                requires_care_proceedings=r.value(
                    s,
                    "requires_care_proceedings",
                    p,
                    bool,
                    "true or false",
                    required=False,
                    default=False,
                ),
                local_authorities=tuple(las),
                teams=tuple(teams),
            )
        )
    _duplicates([s.code for s in sites], "sites", r, "site")
    prefixes = [s.id_prefix for s in sites]
    for i, pfx in enumerate(prefixes):
        if pfx in prefixes[:i]:
            r.problem(f"sites[{i}].id_prefix", pfx, "an ID prefix not used by another site")
    la_codes = [la.code for s in sites for la in s.local_authorities]
    for code in sorted({c for c in la_codes if la_codes.count(c) > 1}):
        r.problem(
            "sites[].local_authorities[].code", code, "local authority codes unique across sites"
        )

    return sites


def _control(r: _Reader, arms: list[ArmDef], sites: list[SiteDef], stored: bool) -> list[ArmDef]:
    """Exactly one arm is the control (``control = true``).  A stored definition written
    before the key existed names none: its control arm is then the one arm served only by
    ``comparator`` teams, if there is one, else none (``TrialDefinition.control_arm`` None)."""
    marked = [a.code for a in arms if a.control]
    expected = (
        "expected exactly one arm with control = true (the comparator, e.g. SAU): effects are "
        "reported as intervention minus control"
    )
    if len(marked) > 1:
        r.problems.append(f"key arms: control = true on {', '.join(marked)}; {expected}")
        return arms
    if marked:
        return arms
    if not stored:
        r.problems.append(f"key arms: no arm has control = true; {expected}")
        return arms
    kinds: dict[str, set[str]] = {}
    for site in sites:
        for team in site.teams:
            if team.arm is not None:
                kinds.setdefault(team.arm, set()).add(team.kind)
    comparators = [a for a in arms if kinds.get(a.code) == {"comparator"}]
    if len(comparators) != 1:
        return arms
    return [replace(a, control=True) if a is comparators[0] else a for a in arms]


def _arms(
    r: _Reader, data: dict[str, Any], sites: list[SiteDef], stored: bool = False
) -> list[ArmDef]:
    site_codes = {s.code for s in sites}
    arms: list[ArmDef] = []
    raw_arms = r.array(data, "arms", "")
    for i, a in enumerate(raw_arms):
        p = f"arms[{i}]"
        if not isinstance(a, dict):
            r.problem(p, a, "a table")
            continue
        r.unknown_keys(a, {"code", "name", "ratio", "labels", "control"}, p)
        labels = r.table(a, "labels", p, required=False)
        clean_labels: dict[str, str] = {}
        for site_code, label in labels.items():
            if site_code not in site_codes:
                r.problem(
                    f"{p}.labels.{site_code}",
                    site_code,
                    "a site code from [[sites]]: " + ", ".join(sorted(site_codes)),
                )
            elif not isinstance(label, str) or not label.strip():
                r.problem(f"{p}.labels.{site_code}", label, "a non-empty local name for the arm")
            else:
                clean_labels[site_code] = label
        arms.append(
            ArmDef(
                code=r.value(a, "code", p, str, _CODE_EXPECTED, check=_code, default="?"),
                name=r.value(a, "name", p, str, "a non-empty name", check=_non_empty, default="?"),
                ratio=r.value(
                    a,
                    "ratio",
                    p,
                    int,
                    "a positive whole number (allocation ratio weight)",
                    required=False,
                    default=1,
                    check=_positive,
                ),
                labels=clean_labels,
                control=r.value(
                    a,
                    "control",
                    p,
                    bool,
                    "true (the control arm, e.g. SAU) or false",
                    required=False,
                    default=False,
                ),
            )
        )
    if len(raw_arms) < 2:
        r.problem("arms", len(raw_arms), "at least two [[arms]] entries")
    arms = _control(r, arms, sites, stored) if len(raw_arms) >= 2 else arms
    _duplicates([a.code for a in arms], "arms", r, "arm")
    arm_codes = {a.code for a in arms}
    for i, s in enumerate(sites):
        for j, tm in enumerate(s.teams):
            if tm.arm is not None and tm.arm not in arm_codes:
                r.problem(
                    f"sites[{i}].teams[{j}].arm",
                    tm.arm,
                    "an arm code from [[arms]]: " + ", ".join(sorted(arm_codes)),
                )

    return arms


def _factors(r: _Reader, data: dict[str, Any], sites: list[SiteDef]) -> list[FactorDef]:
    factors: list[FactorDef] = [
        FactorDef("site", "Site", "site", tuple(FactorLevel(s.code, s.name, None) for s in sites))
    ]
    raw_factors = r.table(data, "factors", "", required=False)
    for code, f in raw_factors.items():
        p = f"factors.{code}"
        if code == "site":
            r.problem(p, code, "a factor name other than 'site' (site is built in)")
            continue
        if not FACTOR_RE.match(code):
            r.problem(p, code, "a factor name of lower-case letters, digits and '_'")
        if not isinstance(f, dict):
            r.problem(p, f, "a table with label, source and levels")
            continue
        r.unknown_keys(f, {"label", "source", "levels"}, p)
        fsource = r.choice(f, "source", p, FACTOR_SOURCES[1:], default="?")
        levels = []
        for j, lv in enumerate(r.array(f, "levels", p)):
            lp = f"{p}.levels[{j}]"
            if not isinstance(lv, dict):
                r.problem(lp, lv, "a table with code, label and (for numeric sources) max")
                continue
            r.unknown_keys(lv, {"code", "label", "max"}, lp)
            numeric = fsource != "declared"
            lcode = r.value(lv, "code", lp, str, "a level code", check=_non_empty, default="?")
            levels.append(
                FactorLevel(
                    code=lcode,
                    label=r.value(lv, "label", lp, str, "a label", required=False, default=lcode),
                    max=r.value(
                        lv,
                        "max",
                        lp,
                        int,
                        "a whole-number upper bound (inclusive)",
                        required=numeric,
                    ),
                )
            )
        if len(levels) < 2:
            r.problem(f"{p}.levels", len(levels), "at least two levels")
        maxes = [lv.max for lv in levels if lv.max is not None]
        if maxes != sorted(maxes) or len(set(maxes)) != len(maxes):
            r.problem(f"{p}.levels", maxes, "levels in increasing order of max")
        factors.append(
            FactorDef(
                code, r.value(f, "label", p, str, "a label", default=code), fsource, tuple(levels)
            )
        )

    return factors


def _randomisation(
    r: _Reader, data: dict[str, Any], arms: list[ArmDef], factors: list[FactorDef]
) -> RandomisationDef:
    factor_codes = {f.code for f in factors}
    rd = r.table(data, "randomisation", "")
    r.unknown_keys(
        rd,
        {"unit", "method", "stratify_by", "factors", "minimisation_probability", "block_sizes"},
        "randomisation",
    )

    def code_list(key: str, default: list[str]) -> tuple[str, ...]:
        raw = rd.get(key, default)
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            r.problem(f"randomisation.{key}", raw, "an array of factor codes")
            return ()
        for x in raw:
            if x not in factor_codes:
                r.problem(
                    f"randomisation.{key}", x, "a factor code: " + ", ".join(sorted(factor_codes))
                )
        return tuple(raw)

    block_sizes_raw = rd.get("block_sizes", [2, 4])
    if not (
        isinstance(block_sizes_raw, list)
        and block_sizes_raw
        and all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in block_sizes_raw)
    ):
        r.problem(
            "randomisation.block_sizes", block_sizes_raw, "an array of positive whole numbers"
        )
        block_sizes_raw = [2, 4]
    total_ratio = sum(a.ratio for a in arms) or 1
    for b in block_sizes_raw:
        if b % total_ratio:
            r.problem(
                "randomisation.block_sizes",
                b,
                f"multiples of the sum of arm ratios ({total_ratio})",
            )
    return RandomisationDef(
        unit=r.choice(rd, "unit", "randomisation", ("family",), default="family"),
        method=r.choice(
            rd, "method", "randomisation", RANDOMISATION_METHODS, default="minimisation"
        ),
        stratify_by=code_list("stratify_by", ["site"]),
        factors=code_list("factors", ["site"]),
        minimisation_probability=float(
            r.value(
                rd,
                "minimisation_probability",
                "randomisation",
                (int, float),
                "a probability above 0.5 and at most 1",
                required=False,
                default=0.8,
                check=lambda v: 0.5 < v <= 1,
            )
        ),
        block_sizes=tuple(block_sizes_raw),
    )


def _timepoints(r: _Reader, data: dict[str, Any]) -> list[TimepointDef]:
    timepoints: list[TimepointDef] = []
    for i, tp in enumerate(r.array(data, "timepoints", "")):
        p = f"timepoints[{i}]"
        if not isinstance(tp, dict):
            r.problem(p, tp, "a table")
            continue
        r.unknown_keys(tp, {"code", "label", "anchor", "offset", "window", "instruments"}, p)
        offset = r.duration(tp, "offset", p)
        window = tp.get("window", _MISSING)
        w_start = w_end = None
        if not (isinstance(window, list) and len(window) == 2):
            r.problem(
                f"{p}.window",
                window,
                "two durations [start, end] relative to the anchor, e.g. ['4w', '14w']",
            )
        else:
            w_start = r.duration(tp, "window[0]", p, raw=window[0])
            w_end = r.duration(tp, "window[1]", p, raw=window[1])
        if (
            offset
            and w_start
            and w_end
            and not (w_start.approx_days() <= offset.approx_days() <= w_end.approx_days())
        ):
            r.problem(f"{p}.window", window, f"a window that contains the offset {offset}")
        instruments = []
        for j, ins in enumerate(r.array(tp, "instruments", p, required=False)):
            ip = f"{p}.instruments[{j}]"
            if not isinstance(ins, dict):
                r.problem(ip, ins, "a table with instrument and respondent")
                continue
            r.unknown_keys(
                ins,
                {"instrument", "respondent", "min_age_months", "max_age_months", "required"},
                ip,
            )
            lo = r.value(
                ins,
                "min_age_months",
                ip,
                int,
                "a whole number of months >= 0",
                required=False,
                check=lambda v: v >= 0,
            )
            hi = r.value(
                ins,
                "max_age_months",
                ip,
                int,
                "a whole number of months >= 0",
                required=False,
                check=lambda v: v >= 0,
            )
            if lo is not None and hi is not None and hi < lo:
                r.problem(f"{ip}.max_age_months", hi, f"at least min_age_months ({lo})")
            instruments.append(
                ScheduledInstrument(
                    instrument=r.value(
                        ins,
                        "instrument",
                        ip,
                        str,
                        "a lower-case instrument code such as 'sdq'",
                        check=lambda v: bool(INSTRUMENT_RE.match(v)),
                        default="?",
                    ),
                    respondent=r.choice(ins, "respondent", ip, RESPONDENT_TYPES, default="?"),
                    min_age_months=lo,
                    max_age_months=hi,
                    required=r.value(
                        ins, "required", ip, bool, "true or false", required=False, default=True
                    ),
                )
            )
        timepoints.append(
            TimepointDef(
                code=r.value(
                    tp,
                    "code",
                    p,
                    str,
                    "a code of 1-16 letters, digits or '_'",
                    check=lambda v: bool(TIMEPOINT_RE.match(v)),
                    default="?",
                ),
                label=r.value(
                    tp, "label", p, str, "a label", required=False, default=tp.get("code", "?")
                ),
                anchor=r.choice(tp, "anchor", p, TIMEPOINT_ANCHORS, default="?"),
                offset=offset or Duration(0, "d"),
                window_start=w_start or Duration(0, "d"),
                window_end=w_end or Duration(0, "d"),
                instruments=tuple(instruments),
            )
        )
    if not timepoints and "timepoints" in data:
        r.problem("timepoints", [], "at least one [[timepoints]] entry")
    _duplicates([t.code for t in timepoints], "timepoints", r, "timepoint")

    return timepoints
