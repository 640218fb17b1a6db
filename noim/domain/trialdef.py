"""The declarative trial definition: a TOML file, validated on load.

``load_definition(path)`` reads a file, ``parse_definition(text)`` a string,
``default_definition()`` the built-in NIM trial (``noim/trials/nim.toml``).
Every problem found is reported at once, each naming the key (as a path such
as ``sites[1].jurisdiction``), the value received and what was expected.
The file format is documented in docs/trial-definition.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from noim.domain.durations import Duration
from noim.domain.exceptions import TrialDefinitionError

BUILTIN_TRIALS = ("nim", "example")


@dataclass(frozen=True)
class TrialInfo:
    code: str
    short_name: str
    title: str
    registration: str
    target_families: int | None
    sponsor: str | None


@dataclass(frozen=True)
class LocalAuthorityDef:
    code: str
    name: str


@dataclass(frozen=True)
class TeamDef:
    code: str
    name: str
    kind: str
    arm: str | None


@dataclass(frozen=True)
class SiteDef:
    code: str
    name: str
    jurisdiction: str
    id_prefix: str
    target_families: int | None
    requires_care_proceedings: bool
    local_authorities: tuple[LocalAuthorityDef, ...]
    teams: tuple[TeamDef, ...]


@dataclass(frozen=True)
class ArmDef:
    code: str
    name: str
    ratio: int
    labels: dict[str, str]  # site code -> local label
    #: the control (comparator) arm: effects are reported as intervention minus control
    control: bool = False

    def label_at(self, site_code: str) -> str:
        return self.labels.get(site_code, self.name)


@dataclass(frozen=True)
class FactorLevel:
    code: str
    label: str
    max: int | None  # upper bound (inclusive) for numeric sources


@dataclass(frozen=True)
class FactorDef:
    code: str
    label: str
    source: str
    levels: tuple[FactorLevel, ...]

    def level_for(self, value: int) -> str:
        """Band a numeric value (age in months, number of children) into a level code."""
        for level in self.levels:
            if level.max is not None and value <= level.max:
                return level.code
        raise ValueError(
            f"factor {self.code}: value {value} is above the last level's maximum "
            f"({self.levels[-1].max})"
        )


@dataclass(frozen=True)
class RandomisationDef:
    unit: str
    method: str
    stratify_by: tuple[str, ...]
    factors: tuple[str, ...]
    minimisation_probability: float
    block_sizes: tuple[int, ...]


@dataclass(frozen=True)
class EconomicsDef:
    """The economic evaluation's set-up: which services would reveal the arm."""

    #: unit-cost codes of services only one arm receives (e.g. an Infant and Family Team
    #: session): their use and cost would tell a blinded reader the family's arm, so
    #: blinded roles never see them (docs/roles.md)
    arm_revealing_services: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ScheduledInstrument:
    instrument: str
    respondent: str
    min_age_months: int | None
    max_age_months: int | None
    required: bool


@dataclass(frozen=True)
class TimepointDef:
    code: str
    label: str
    anchor: str
    offset: Duration
    window_start: Duration
    window_end: Duration
    instruments: tuple[ScheduledInstrument, ...]


@dataclass(frozen=True)
class TrialDefinition:
    trial: TrialInfo
    sites: tuple[SiteDef, ...]
    arms: tuple[ArmDef, ...]
    factors: tuple[FactorDef, ...]
    randomisation: RandomisationDef
    timepoints: tuple[TimepointDef, ...]
    source: str
    text: str
    economics: EconomicsDef = EconomicsDef()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def site(self, code: str) -> SiteDef:
        for s in self.sites:
            if s.code == code:
                return s
        raise KeyError(code)

    def arm(self, code: str) -> ArmDef:
        for a in self.arms:
            if a.code == code:
                return a
        raise KeyError(code)

    @property
    def control_arm(self) -> ArmDef | None:
        """The control arm (``control = true``; SAU in NIM), or None in a definition stored
        before the key existed that does not name one (see docs/trial-definition.md)."""
        return next((a for a in self.arms if a.control), None)

    def arm_order(self) -> list[str]:
        """Arm codes in analysis order: the control arm first (the reference of every
        comparison, so effects are intervention minus control), then the others as listed."""
        control = self.control_arm
        first = [control.code] if control is not None else []
        return first + [a.code for a in self.arms if a is not control]

    def factor(self, code: str) -> FactorDef:
        for f in self.factors:
            if f.code == code:
                return f
        raise KeyError(code)

    def arm_words(self) -> list[str]:
        """Every word that would tell a reader an arm (longest first): arm codes, names and
        site labels, the codes and names of the teams that deliver one arm, and the
        services only one arm receives.  Free text shown to blinded readers, and the open
        report, never holds them."""
        words: set[str] = set(self.economics.arm_revealing_services)
        for arm in self.arms:
            words |= {arm.code, arm.name, *arm.labels.values()}
        for site in self.sites:
            for team in site.teams:
                if team.arm is not None:
                    words |= {team.code, team.name}
        return sorted((w for w in words if w.strip()), key=lambda w: (-len(w), w))

    def timepoint(self, code: str) -> TimepointDef:
        for t in self.timepoints:
            if t.code == code:
                return t
        raise KeyError(code)


def load_definition(path: str | Path) -> TrialDefinition:
    """Read and validate a trial definition file (or a built-in name: 'nim', 'example')."""
    if str(path) in BUILTIN_TRIALS:
        return builtin_definition(str(path))
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise TrialDefinitionError(str(p), [f"cannot read the file: {exc.strerror}"]) from None
    from noim.domain.trialdef_parse import parse_definition

    return parse_definition(text, str(p))


def builtin_definition(name: str) -> TrialDefinition:
    """A definition shipped with noim: ``nim`` (the default) or ``example``."""
    if name not in BUILTIN_TRIALS:
        raise TrialDefinitionError(
            name, [f"no built-in trial {name!r}; expected one of {', '.join(BUILTIN_TRIALS)}"]
        )
    text = resources.files("noim.trials").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    from noim.domain.trialdef_parse import parse_definition

    return parse_definition(text, f"built-in:{name}")


def default_definition() -> TrialDefinition:
    """The built-in definition of the NIM trial."""
    return builtin_definition("nim")


def parse_definition(
    text: str, source: str = "<string>", *, stored: bool = False
) -> TrialDefinition:
    """Parse and validate a trial definition held in ``text`` (see ``noim.domain.trialdef_parse``;
    ``stored=True`` for a definition read back from a database or a data freeze)."""
    from noim.domain.trialdef_parse import parse_definition as parse

    return parse(text, source, stored=stored)
