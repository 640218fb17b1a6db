"""Cut-offs as configuration: screening flags by sex and age band, from a data file.

A cut-off table (``noim/instruments/cutoffs/<instrument>.toml``) names, per scale, the
direction of the cut-off (``at_or_above`` or ``at_or_below``) and the flag it raises, and
gives one row per sex and age band (completed months, both ends inclusive) with the
threshold of each scale.  :func:`classify` looks a record up in it; nothing about any
instrument's cut-offs is written in code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from noim.instruments.engine import InstrumentError, load, read_toml

DIRECTIONS = ("at_or_above", "at_or_below")
SEXES = ("female", "male")


@dataclass(frozen=True)
class ScaleCutoff:
    scale: str
    direction: str
    flag: str
    otherwise: str


@dataclass(frozen=True)
class Band:
    sex: str
    min_age_months: int
    max_age_months: int
    thresholds: dict[str, int]  # scale -> threshold; a scale left out has no cut-off here


@dataclass(frozen=True)
class CutoffTable:
    instrument: str
    source: str
    verified: bool
    scales: tuple[ScaleCutoff, ...]
    bands: tuple[Band, ...]

    def band(self, sex: str, age_months: int) -> Band | None:
        """The band for a child of ``sex`` aged ``age_months`` completed months, if any."""
        for b in self.bands:
            if b.sex == sex and b.min_age_months <= age_months <= b.max_age_months:
                return b
        return None


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InstrumentError(f"{where}: got {value!r}; expected a whole number")
    return value


def parse_cutoffs(text: str, source: str) -> CutoffTable:
    """A cut-off table from TOML ``text`` (``source`` names it in error messages)."""
    data = read_toml(text, source)
    try:
        scales = tuple(
            ScaleCutoff(code, spec["direction"], spec["flag"], spec["otherwise"])
            for code, spec in data["scales"].items()
        )
        for sc in scales:
            if sc.direction not in DIRECTIONS:
                raise InstrumentError(
                    f"{source}: scales.{sc.scale}.direction {sc.direction!r}; expected one of "
                    + ", ".join(DIRECTIONS)
                )
        codes = {sc.scale for sc in scales}
        bands: list[Band] = []
        for n, row in enumerate(data.get("bands", []), start=1):
            where = f"{source}: band {n}"
            if row["sex"] not in SEXES:
                raise InstrumentError(
                    f"{where}: sex {row['sex']!r}; expected one of {', '.join(SEXES)}"
                )
            lo, hi = (_int(v, f"{where}: age_months") for v in row["age_months"])
            if not 0 <= lo <= hi:
                raise InstrumentError(f"{where}: age_months [{lo}, {hi}]; expected 0 <= from <= to")
            extra = set(row) - {"sex", "age_months"} - codes
            if extra:
                raise InstrumentError(
                    f"{where}: unknown key(s) {sorted(extra)}; expected sex, age_months and "
                    + ", ".join(sorted(codes))
                )
            band = Band(
                row["sex"],
                lo,
                hi,
                {c: _int(row[c], f"{where}: {c}") for c in sorted(codes) if c in row},
            )
            for other in bands:
                if (
                    other.sex == band.sex
                    and lo <= other.max_age_months
                    and other.min_age_months <= hi
                ):
                    raise InstrumentError(
                        f"{where}: {band.sex} {lo}-{hi} months overlaps "
                        f"{other.min_age_months}-{other.max_age_months} months"
                    )
            bands.append(band)
        return CutoffTable(
            instrument=data["instrument"],
            source=data["source"],
            verified=bool(data.get("verified", False)),
            scales=scales,
            bands=tuple(bands),
        )
    except KeyError as exc:
        raise InstrumentError(f"{source}: missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InstrumentError):
            raise
        raise InstrumentError(f"{source}: {exc}") from None


@cache
def load_cutoffs(instrument: str) -> CutoffTable:
    """The cut-off table shipped for ``instrument``; every scale it names must exist."""
    folder = resources.files("noim.instruments").joinpath("cutoffs")
    name = f"{instrument}.toml"
    if not folder.joinpath(name).is_file():
        shipped = sorted(
            p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
        )
        raise InstrumentError(
            f"instrument {instrument!r} has no cut-offs; expected one of {', '.join(shipped)}"
        )
    table = parse_cutoffs(folder.joinpath(name).read_text(encoding="utf-8"), name)
    known = {s.code for s in load(instrument).scales}
    unknown = [sc.scale for sc in table.scales if sc.scale not in known]
    if table.instrument != instrument or unknown:
        raise InstrumentError(
            f"{name}: instrument {table.instrument!r} with scales {unknown}; expected "
            f"{instrument!r} and scales among {', '.join(sorted(known))}"
        )
    return table


def classify(
    instrument: str,
    scores: Mapping[str, float | None],
    *,
    sex: str,
    age_months: int,
    table: CutoffTable | None = None,
) -> dict[str, str | None]:
    """Screening flag per scale of the cut-off table, e.g. ``{"problem": "possible_problem"}``.

    ``age_months`` is the child's age in completed months at the assessment.  A scale's flag
    is None when its score is missing, when the sex is not female or male, when the age is
    outside every band, or when the table gives no cut-off for that band.  ``table``
    overrides the shipped table (tests, sensitivity analyses).
    """
    if isinstance(age_months, bool) or not isinstance(age_months, int):
        raise InstrumentError(
            f"age_months: got {age_months!r}; expected a whole number of completed months"
        )
    t = table if table is not None else load_cutoffs(instrument.lower())
    band = t.band(sex, age_months)
    out: dict[str, str | None] = {}
    for sc in t.scales:
        value = scores.get(sc.scale)
        threshold = band.thresholds.get(sc.scale) if band is not None else None
        if value is None or math.isnan(value) or threshold is None:
            out[sc.scale] = None
            continue
        hit = value >= threshold if sc.direction == "at_or_above" else value <= threshold
        out[sc.scale] = sc.flag if hit else sc.otherwise
    return out
