"""The one scoring engine: instrument definitions are data files (``definitions/*.toml``),
and every scale is scored by one of a few generic, data-driven rules.

Rules (``rule = "..."`` on a ``[[scales]]`` table):

* ``prorated_mean``: scored when at least ``min_answered`` items are answered; the mean of
  the answered items (reverse-keyed items reversed) times the number of items, rounded half
  *up* (exact integer arithmetic, never Python's round-half-even).
* ``prorated_sum``: the same computation, parameterised by ``max_missing``: scored when no
  more than ``max_missing`` items are missing, as sum x n_items / n_answered rounded half up.
* ``sum_of_scales``: the sum of other scales; missing when any of them is missing.
* ``recoded_sum``: items recoded through a table and summed; 0 when a gate item says there
  is nothing to rate; missing when an item is missing; absent when none of its items is given.
* ``transformed_mean``: items mapped through a named value table (``[transforms]``) and
  averaged over the answered items; scored when at least ``min_answered_fraction`` of the
  items are answered.  Not rounded (an exact mean returned as the nearest float).
* ``mean_of_items_of_scales``: the mean of all answered (transformed) items of other
  ``transformed_mean`` scales, with the same ``min_answered_fraction`` rule over all their
  items together (e.g. a PedsQL summary or total score).

Items and scales may be limited to some ``forms`` of an instrument (the PedsQL modules);
then a form must be given and each form has its own item set and scales.

The computations themselves live once, vectorised, in :mod:`noim.instruments.vector`;
``score_with`` scores one record through them.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cache
from importlib import resources
from math import floor
from typing import Any

RULES = (
    "prorated_mean",
    "prorated_sum",
    "sum_of_scales",
    "recoded_sum",
    "transformed_mean",
    "mean_of_items_of_scales",
)
#: rules whose score is computed from items (and keeps per-item sums for summaries)
ITEM_RULES = ("prorated_mean", "prorated_sum", "recoded_sum", "transformed_mean")


@dataclass(frozen=True)
class ItemDef:
    number: int
    allowed: tuple[int, ...]
    reverse: bool
    optional: bool
    forms: tuple[str, ...] = ()  # empty: asked on every form
    #: the response scale's name (``[response_scales]``), for its value labels
    scale: str = ""


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
    transform: tuple[tuple[int, int], ...] = ()
    min_fraction: Fraction | None = None
    forms: tuple[str, ...] = ()  # empty: scored on every form
    integer: bool = True


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
    #: per-form item sets, only for instruments whose items or scales differ by form
    form_items: dict[str, dict[int, ItemDef]] = field(default_factory=dict)
    #: the codes that say why an item is unanswered (``missing_codes``)
    missing_codes: tuple[str, ...] = ()
    #: labels of each response scale's values (``[response_labels]``): scale -> value -> label
    response_labels: dict[str, dict[int, str]] = field(default_factory=dict)
    #: the ages (completed months, inclusive) each form is for (``[form_ages]``)
    form_ages: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def form_required(self) -> bool:
        """True when items or scales differ by form, so a form must be given."""
        return bool(self.form_items)

    def items_for(self, form: str | None) -> dict[int, ItemDef]:
        """The items asked on ``form`` (all items when the instrument has one item set)."""
        if self.form_items and form in self.form_items:
            return self.form_items[form]
        return self.items

    def scales_for(self, form: str | None) -> tuple[ScaleDef, ...]:
        """The scales scored on ``form``, in scoring order."""
        return tuple(s for s in self.scales if not s.forms or form is None or form in s.forms)


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


def _fraction(value: Any, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InstrumentError(f"{where}: got {value!r}; expected a fraction such as 0.5")
    frac = Fraction(str(value))
    if not 0 < frac <= 1:
        raise InstrumentError(f"{where}: got {value!r}; expected a fraction in (0, 1]")
    return frac


def _parse_items(data: dict[str, Any], forms: tuple[str, ...], source: str) -> list[ItemDef]:
    scales_def: dict[str, list[int]] = {
        k: list(v) for k, v in data.get("response_scales", {}).items()
    }
    out: list[ItemDef] = []
    for block in data["items"]:
        lo, hi = block["range"]
        if block["scale"] not in scales_def:
            raise InstrumentError(
                f"{source}: items {lo}-{hi}: response scale {block['scale']!r} is not defined"
            )
        allowed = tuple(scales_def[block["scale"]])
        reverse = set(block.get("reverse", []))
        bforms = tuple(block.get("forms", ()))
        unknown = [f for f in bforms if f not in forms]
        if unknown:
            raise InstrumentError(f"{source}: items {lo}-{hi}: unknown form(s) {unknown}")
        for n in range(lo, hi + 1):
            out.append(
                ItemDef(
                    n,
                    allowed,
                    n in reverse,
                    bool(block.get("optional", False)),
                    bforms,
                    block["scale"],
                )
            )
    return out


def _item_sets(
    blocks: list[ItemDef], forms: tuple[str, ...], form_specific: bool, source: str
) -> tuple[dict[int, ItemDef], dict[str, dict[int, ItemDef]]]:
    """The union item set and, for form-specific instruments, one set per form."""
    per_form: dict[str, dict[int, ItemDef]] = {}
    if not form_specific:
        items: dict[int, ItemDef] = {}
        for item in blocks:
            if item.number in items:
                raise InstrumentError(f"{source}: item {item.number} defined twice")
            items[item.number] = item
        return items, per_form
    for f in forms:
        these: dict[int, ItemDef] = {}
        for item in blocks:
            if item.forms and f not in item.forms:
                continue
            if item.number in these:
                raise InstrumentError(f"{source}: item {item.number} defined twice on form {f}")
            these[item.number] = ItemDef(
                item.number, item.allowed, item.reverse, item.optional, scale=item.scale
            )
        per_form[f] = these
    # The union, for callers that know no form: an item not asked on every form is optional.
    union: dict[int, ItemDef] = {}
    for n in sorted({n for these in per_form.values() for n in these}):
        defs = [these[n] for these in per_form.values() if n in these]
        if len({d.reverse for d in defs}) > 1:
            raise InstrumentError(f"{source}: item {n} is reverse-keyed on some forms only")
        allowed = tuple(sorted({a for d in defs for a in d.allowed}))
        optional = len(defs) < len(per_form) or any(d.optional for d in defs)
        scale = defs[0].scale if len({d.scale for d in defs}) == 1 else ""
        union[n] = ItemDef(n, allowed, defs[0].reverse, optional, scale=scale)
    return union, per_form


def _parse_scale(
    s: dict[str, Any], forms: tuple[str, ...], transforms: dict[str, dict[int, int]], source: str
) -> ScaleDef:
    code, rule = s["code"], s["rule"]
    where = f"{source}: scale {code}"
    if rule not in RULES:
        raise InstrumentError(f"{where}: rule {rule!r}; expected one of {', '.join(RULES)}")
    sforms = tuple(s.get("forms", ()))
    if any(f not in forms for f in sforms):
        raise InstrumentError(f"{where}: unknown form(s) {[f for f in sforms if f not in forms]}")
    items = tuple(s.get("items", ()))
    if len(set(items)) != len(items):
        raise InstrumentError(f"{where}: an item is listed twice")
    min_answered = int(s.get("min_answered", 0))
    if rule == "prorated_sum":
        max_missing = int(s["max_missing"])
        if not 0 <= max_missing < len(items):
            raise InstrumentError(
                f"{where}: max_missing {max_missing}; expected 0 to {len(items) - 1}"
            )
        min_answered = len(items) - max_missing
    transform: tuple[tuple[int, int], ...] = ()
    if rule == "transformed_mean":
        name = s["transform"]
        if name not in transforms:
            raise InstrumentError(f"{where}: transform {name!r} is not defined in [transforms]")
        transform = tuple(sorted(transforms[name].items()))
    min_fraction = None
    if rule in ("transformed_mean", "mean_of_items_of_scales"):
        min_fraction = _fraction(s["min_answered_fraction"], f"{where}: min_answered_fraction")
    return ScaleDef(
        code=code,
        rule=rule,
        items=items,
        min_answered=min_answered,
        scales=tuple(s.get("scales", ())),
        recode=tuple(sorted((int(k), int(v)) for k, v in s.get("recode", {}).items())),
        gate_item=s.get("gate_item"),
        gate_zero_when=tuple(s.get("gate_zero_when", ())),
        transform=transform,
        min_fraction=min_fraction,
        forms=sforms,
        integer=rule not in ("transformed_mean", "mean_of_items_of_scales"),
    )


def _check_form_plan(d: InstrumentDef, form: str | None, source: str) -> None:
    """Each scale scored on ``form`` uses its items and earlier scales only."""
    items = d.items_for(form)
    seen: dict[str, ScaleDef] = {}
    on = f" on form {form}" if form is not None and d.form_required else ""
    for s in d.scales_for(form):
        where = f"{source}: scale {s.code}{on}"
        if s.code in seen:
            raise InstrumentError(f"{where}: defined twice")
        used = [*s.items, *([s.gate_item] if s.gate_item else [])]
        unknown = [i for i in used if i not in items]
        if unknown:
            raise InstrumentError(f"{where} uses undefined item(s) {unknown}")
        if any(c not in seen for c in s.scales):
            raise InstrumentError(f"{where}: uses a scale defined after it or not at all")
        for table, what in ((s.transform, "transform"), (s.recode, "recode")):
            if table:
                keys = {k for k, _ in table}
                gaps = sorted({a for i in s.items for a in items[i].allowed} - keys)
                if gaps:
                    raise InstrumentError(f"{where}: {what} gives no value for {gaps}")
        if s.rule == "mean_of_items_of_scales":
            parts = [seen[c] for c in s.scales]
            if any(p.rule != "transformed_mean" for p in parts):
                raise InstrumentError(f"{where}: expected transformed_mean scales only")
            pooled = [i for p in parts for i in p.items]
            if len(pooled) != len(set(pooled)):
                raise InstrumentError(f"{where}: its scales share items")
        seen[s.code] = s


def _response_labels(data: dict[str, Any], source: str) -> dict[str, dict[int, str]]:
    """``[response_labels]``: one label per value of a response scale, in the scale's order."""
    scales = data.get("response_scales", {})
    out: dict[str, dict[int, str]] = {}
    for name, labels in data.get("response_labels", {}).items():
        values = scales.get(name)
        if values is None:
            raise InstrumentError(f"{source}: response_labels {name!r}: no such response scale")
        if len(labels) != len(values):
            raise InstrumentError(
                f"{source}: response_labels {name!r}: {len(labels)} labels; "
                f"expected {len(values)}, one per value of the scale"
            )
        out[name] = {int(v): str(label) for v, label in zip(values, labels, strict=True)}
    return out


def _form_ages(
    data: dict[str, Any], forms: tuple[str, ...], source: str
) -> dict[str, tuple[int, int]]:
    """``[form_ages]``: form -> [from, to] completed months, inclusive, not overlapping."""
    out: dict[str, tuple[int, int]] = {}
    for form, band in data.get("form_ages", {}).items():
        if form not in forms:
            raise InstrumentError(f"{source}: form_ages {form!r}: not one of the forms {forms}")
        lo, hi = (int(x) for x in band)
        if not 0 <= lo <= hi:
            raise InstrumentError(
                f"{source}: form_ages {form!r}: [{lo}, {hi}]; expected 0 <= from <= to"
            )
        for other, (olo, ohi) in out.items():
            if lo <= ohi and olo <= hi:
                raise InstrumentError(f"{source}: form_ages {form!r} overlaps {other!r}")
        out[form] = (lo, hi)
    return out


def form_for_age(d: InstrumentDef, age_months: int) -> str | None:
    """The form of ``d`` for a child of ``age_months`` completed months.

    None when the definition gives ages and none covers this age; the only form (or None)
    when the definition gives no ages.
    """
    if not d.form_ages:
        return d.forms[0] if len(d.forms) == 1 else None
    for form, (lo, hi) in d.form_ages.items():
        if lo <= age_months <= hi:
            return form
    return None


def read_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InstrumentError(f"{source}: not valid TOML ({exc})") from None


def parse(text: str, source: str) -> InstrumentDef:
    data = read_toml(text, source)
    try:
        forms = tuple(data.get("forms", ()))
        transforms = {
            name: {int(k): int(v) for k, v in table.items()}
            for name, table in data.get("transforms", {}).items()
        }
        blocks = _parse_items(data, forms, source)
        raw_scales = [_parse_scale(s, forms, transforms, source) for s in data["scales"]]
        form_specific = any(i.forms for i in blocks) or any(s.forms for s in raw_scales)
        items, per_form = _item_sets(blocks, forms, form_specific, source)
        scales: list[ScaleDef] = []
        for s in raw_scales:  # a sum of scales is whole when all its parts are
            if s.rule == "sum_of_scales":
                parts = [x for x in scales if x.code in s.scales]
                s = replace(s, integer=all(p.integer for p in parts))
            scales.append(s)
        d = InstrumentDef(
            code=data["code"],
            version=data["version"],
            name=data["name"],
            scoring_version=data.get("scoring_version", f"{data['code']}-{data['version']}"),
            forms=forms,
            informants=tuple(data.get("informants", ())),
            items=items,
            labels={int(k): v for k, v in data.get("labels", {}).items()},
            scales=tuple(scales),
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            form_items=per_form,
            missing_codes=tuple(data.get("missing_codes", ())),
            response_labels=_response_labels(data, source),
            form_ages=_form_ages(data, forms, source),
        )
        for form in forms if form_specific else (None,):
            _check_form_plan(d, form, source)
        return d
    except KeyError as exc:
        raise InstrumentError(f"{source}: missing key {exc.args[0]!r}") from None


def round_half_up(value: Fraction) -> int:
    """Round an exact value to the nearest whole number, halves up."""
    return floor(value + Fraction(1, 2))


def min_count(s: ScaleDef, n_items: int) -> int:
    """How many items must be answered to score ``s`` out of ``n_items`` (at least one)."""
    if s.min_fraction is not None:
        return max(1, math.ceil(s.min_fraction * n_items))
    return max(1, s.min_answered)


def check_form(d: InstrumentDef, form: str | None) -> list[str]:
    """What is wrong with ``form`` for instrument ``d`` (empty when it is fine)."""
    if form is not None and d.forms and form not in d.forms:
        return [f"form {form!r}: expected one of {', '.join(d.forms)}"]
    if form is None and d.form_required:
        return [f"form None: expected one of {', '.join(d.forms)} (the scales differ by form)"]
    return []


def check_responses(d: InstrumentDef, responses: Mapping[Any, Any], form: str | None) -> list[str]:
    """Everything wrong with a set of responses (empty when they can be scored)."""
    problems = check_form(d, form)
    items = d.items_for(form)
    for item, value in responses.items():
        if not isinstance(item, int) or isinstance(item, bool) or item not in items:
            on = f" on form {form}" if d.form_required and form in d.forms else ""
            problems.append(f"item {item!r}: expected an item number {min(items)}-{max(items)}{on}")
        elif value is not None and (isinstance(value, bool) or value not in items[item].allowed):
            problems.append(
                f"item {item}: got {value!r}; expected one of {', '.join(map(str, items[item].allowed))} or None"
            )
    return problems


def score_with(
    d: InstrumentDef, responses: Mapping[int, Any], form: str | None = None
) -> dict[str, float | None]:
    """Score one record ``responses`` (item number -> value or None) by definition ``d``.

    Whole-number scales come back as ``int``, means as ``float``, missing scores as None;
    a scale none of whose items is given is left out.
    """
    from noim.instruments import vector

    problems = check_responses(d, responses, form)
    if problems:
        raise InstrumentError(f"{d.code}: " + "; ".join(problems))
    numbers = sorted(responses)
    row = [[math.nan if responses[n] is None else float(responses[n]) for n in numbers]]
    result = vector.compute(d, vector.as_matrix(row, len(numbers)), numbers, form)
    out: dict[str, float | None] = {}
    for s in d.scales_for(form):
        if s.code in result:
            x = float(result[s.code][0])
            out[s.code] = None if math.isnan(x) else (int(x) if s.integer else x)
    return out
