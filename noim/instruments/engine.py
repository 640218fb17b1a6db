"""The one scoring engine: instrument definitions are data files (``definitions/*.toml``),
and every scale is scored by one of a few published rules.

Rules:

* ``prorated_mean``: scored when at least ``min_answered`` items are answered; the mean of
  the answered items (reverse-keyed items reversed) times the number of items, rounded half
  *up* (exact arithmetic, never Python's round-half-even).
* ``sum_of_scales``: the sum of other scales; missing when any of them is missing.
* ``recoded_sum``: items recoded through a table and summed; 0 when a gate item says there
  is nothing to rate; missing when an item is missing; absent when none of its items is given.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from importlib import resources
from math import floor
from typing import Any

RULES = ("prorated_mean", "sum_of_scales", "recoded_sum")


@dataclass(frozen=True)
class ItemDef:
    number: int
    allowed: tuple[int, ...]
    reverse: bool
    optional: bool


@dataclass(frozen=True)
class ScaleDef:
    code: str
    rule: str
    items: tuple[int, ...] = ()
    min_answered: int = 0
    scales: tuple[str, ...] = ()
    recode: tuple[tuple[int, int], ...] = ()
    gate_item: int | None = None
    gate_zero_when: tuple[int, ...] = ()


@dataclass(frozen=True)
class InstrumentDef:
    code: str
    version: str
    name: str
    scoring_version: str
    forms: tuple[str, ...]
    informants: tuple[str, ...]
    items: dict[int, ItemDef]
    labels: dict[int, str]
    scales: tuple[ScaleDef, ...]
    sha256: str


class InstrumentError(ValueError):
    """A definition file or a set of responses that cannot be scored, with the reason."""


def available() -> list[str]:
    """Codes of the instruments shipped with noim."""
    folder = resources.files("noim.instruments").joinpath("definitions")
    return sorted(
        p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml")
    )


@cache
def load(code: str) -> InstrumentDef:
    """The definition of instrument ``code`` (lower case, e.g. ``sdq``)."""
    if code not in available():
        raise InstrumentError(f"instrument {code!r}: expected one of {', '.join(available())}")
    text = (
        resources.files("noim.instruments")
        .joinpath("definitions", f"{code}.toml")
        .read_text(encoding="utf-8")
    )
    return parse(text, f"{code}.toml")


def parse(text: str, source: str) -> InstrumentDef:
    data = tomllib.loads(text)
    try:
        scales_def: dict[str, list[int]] = {
            k: list(v) for k, v in data.get("response_scales", {}).items()
        }
        items: dict[int, ItemDef] = {}
        for block in data["items"]:
            lo, hi = block["range"]
            allowed = tuple(scales_def[block["scale"]])
            reverse = set(block.get("reverse", []))
            for n in range(lo, hi + 1):
                if n in items:
                    raise InstrumentError(f"{source}: item {n} defined twice")
                items[n] = ItemDef(n, allowed, n in reverse, bool(block.get("optional", False)))
        scales: list[ScaleDef] = []
        for s in data["scales"]:
            rule = s["rule"]
            if rule not in RULES:
                raise InstrumentError(
                    f"{source}: scale {s['code']}: rule {rule!r}; expected one of {', '.join(RULES)}"
                )
            recode = tuple(sorted((int(k), int(v)) for k, v in s.get("recode", {}).items()))
            scale = ScaleDef(
                code=s["code"],
                rule=rule,
                items=tuple(s.get("items", ())),
                min_answered=int(s.get("min_answered", 0)),
                scales=tuple(s.get("scales", ())),
                recode=recode,
                gate_item=s.get("gate_item"),
                gate_zero_when=tuple(s.get("gate_zero_when", ())),
            )
            unknown = [
                i
                for i in (*scale.items, *([scale.gate_item] if scale.gate_item else []))
                if i not in items
            ]
            if unknown:
                raise InstrumentError(
                    f"{source}: scale {scale.code} uses undefined item(s) {unknown}"
                )
            known = {x.code for x in scales}
            if any(sc not in known for sc in scale.scales):
                raise InstrumentError(
                    f"{source}: scale {scale.code} sums a scale defined after it or not at all"
                )
            scales.append(scale)
        return InstrumentDef(
            code=data["code"],
            version=data["version"],
            name=data["name"],
            scoring_version=data.get("scoring_version", f"{data['code']}-{data['version']}"),
            forms=tuple(data.get("forms", ())),
            informants=tuple(data.get("informants", ())),
            items=items,
            labels={int(k): v for k, v in data.get("labels", {}).items()},
            scales=tuple(scales),
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )
    except KeyError as exc:
        raise InstrumentError(f"{source}: missing key {exc.args[0]!r}") from None


def round_half_up(value: Fraction) -> int:
    """Round a non-negative exact value to the nearest whole number, halves up."""
    return floor(value + Fraction(1, 2))


def check_responses(d: InstrumentDef, responses: dict[int, Any], form: str | None) -> list[str]:
    """Everything wrong with a set of responses (empty when they can be scored)."""
    problems = []
    if d.forms and form is not None and form not in d.forms:
        problems.append(f"form {form!r}: expected one of {', '.join(d.forms)}")
    for item, value in responses.items():
        if not isinstance(item, int) or isinstance(item, bool) or item not in d.items:
            problems.append(f"item {item!r}: expected an item number 1-{max(d.items)}")
        elif value is not None and (isinstance(value, bool) or value not in d.items[item].allowed):
            problems.append(
                f"item {item}: got {value!r}; expected one of {', '.join(map(str, d.items[item].allowed))} or None"
            )
    return problems


def score_with(
    d: InstrumentDef, responses: dict[int, Any], form: str | None = None
) -> dict[str, int | None]:
    """Score ``responses`` (item number -> value or None) by definition ``d``."""
    problems = check_responses(d, responses, form)
    if problems:
        raise InstrumentError(f"{d.code}: " + "; ".join(problems))
    out: dict[str, int | None] = {}
    for s in d.scales:
        if s.rule == "prorated_mean":
            values = []
            for n in s.items:
                v = responses.get(n)
                if v is not None:
                    item = d.items[n]
                    values.append(max(item.allowed) + min(item.allowed) - v if item.reverse else v)
            out[s.code] = (
                round_half_up(Fraction(sum(values) * len(s.items), len(values)))
                if len(values) >= s.min_answered and values
                else None
            )
        elif s.rule == "sum_of_scales":
            parts = [out.get(c) for c in s.scales]
            out[s.code] = (
                None if any(p is None for p in parts) else sum(p for p in parts if p is not None)
            )
        else:
            given = [
                n for n in (*s.items, *([s.gate_item] if s.gate_item else [])) if n in responses
            ]
            if not given:
                continue
            gate = responses.get(s.gate_item) if s.gate_item else None
            if gate is not None and gate in s.gate_zero_when:
                out[s.code] = 0
                continue
            table = dict(s.recode)
            vals = [responses.get(n) for n in s.items]
            out[s.code] = (
                None
                if any(v is None for v in vals)
                else sum(table[v] for v in vals if v is not None)
            )
    return out
