"""Assessment data-entry forms built from the instrument definition files.

``instrument_form(code, form)`` turns a definition (``noim/instruments/definitions/*.toml``)
and one of its forms into the fields a page shows: one field per item asked on that form,
with the allowed values and their labels (``[response_labels]``), and a second field per
item for the missing-data code (``missing_codes``).  ``parse_responses`` turns the posted
text back into the ``responses`` and ``missing_reasons`` that
``noim.services.assessments.record_assessment`` takes.

Only text is parsed here (a value must be one of the choices the page offered); every rule
about the responses (allowed values, a missing reason only for an unanswered item, scoring)
stays in the service and the scoring engine.  An item left blank is passed as unanswered,
and the service records it as ``not_answered``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from noim import instruments
from noim.domain.codes import RESPONSE_MISSING_REASONS
from noim.domain.exceptions import Problem, ValidationError

#: how the missing-data codes read on a form
MISSING_LABELS = {
    "not_answered": "Not answered",
    "dont_know": "Don't know",
    "refused": "Refused",
    "not_applicable": "Not applicable",
    "illegible": "Illegible",
}

#: a label giving another form's wording: "Often lies or cheats (2-4 form: often argumentative)"
_FORM_WORDING = re.compile(r"^(?P<usual>.*?)\s*\((?P<form>[^()]+?) form: (?P<other>[^()]*)\)$")


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class ItemField:
    number: int
    #: the form field holding the answer (``item_7``) ...
    name: str
    #: ... and the one holding why it is missing (``missing_7``)
    missing_name: str
    text: str
    choices: tuple[Choice, ...]
    optional: bool
    #: the scale the item belongs to on this form (for grouping), None when in none
    section: str | None


@dataclass(frozen=True)
class Section:
    code: str | None
    title: str
    items: tuple[ItemField, ...]


@dataclass(frozen=True)
class InstrumentForm:
    instrument: str
    name: str
    version: str
    form: str | None
    items: tuple[ItemField, ...]
    missing_codes: tuple[Choice, ...]

    @property
    def sections(self) -> tuple[Section, ...]:
        """The items in their printed order, grouped into runs of one scale (PedsQL prints
        its items scale by scale); when scales interleave (SDQ, BITSEA) one group."""
        runs: list[tuple[str | None, list[ItemField]]] = []
        for f in self.items:
            if runs and runs[-1][0] == f.section:
                runs[-1][1].append(f)
            else:
                runs.append((f.section, [f]))
        if len(runs) * 3 > len(self.items):
            return (Section(None, "Items", self.items),)
        return tuple(Section(code, section_title(code), tuple(fs)) for code, fs in runs)

    def service_fields(self) -> dict[str, str]:
        """The service's problem field names mapped to this form's field names."""
        out = {f"item {f.number} missing_reason": f.missing_name for f in self.items}
        out.update({f"item {f.number}": f.name for f in self.items})
        return out


@dataclass(frozen=True)
class ParsedResponses:
    responses: dict[int, int | None]
    missing_reasons: dict[int, str]


def section_title(code: str | None) -> str:
    if code is None:
        return "Other items"
    return code.replace("_", " ").capitalize()


def item_text(label: str | None, number: int, form: str | None) -> str:
    """The item's wording on ``form``: a label that gives another form's wording in brackets
    ("... (2-4 form: ...)") shows that wording on that form and the usual one elsewhere."""
    if not label:
        return f"Item {number}"
    m = _FORM_WORDING.match(label)
    if m is None:
        return label
    if form is not None and m.group("form").strip() == form:
        other = m.group("other").strip()
        return other[:1].upper() + other[1:]
    return m.group("usual")


def _sections(d: instruments.InstrumentDef, form: str | None) -> dict[int, str]:
    """Each item's first item-based scale on ``form`` (sums of scales group nothing)."""
    out: dict[int, str] = {}
    for s in d.scales_for(form):
        for n in s.items:
            out.setdefault(n, s.code)
        if s.gate_item is not None:
            out.setdefault(s.gate_item, s.code)
    return out


def instrument_form(code: str, form: str | None) -> InstrumentForm:
    """The data-entry fields of instrument ``code`` on ``form`` (see the module docstring)."""
    d = instruments.load(code)
    problems = instruments.engine.check_form(d, form)
    if problems:
        raise ValidationError(Problem("form", "form", form, "ASM-002", problems[0]))
    sections = _sections(d, form)
    fields = []
    for number, item in sorted(d.items_for(form).items()):
        labels = d.response_labels.get(item.scale, {})
        choices = tuple(
            Choice(str(v), f"{v} {labels[v]}" if v in labels else str(v)) for v in item.allowed
        )
        fields.append(
            ItemField(
                number=number,
                name=f"item_{number}",
                missing_name=f"missing_{number}",
                text=item_text(d.labels.get(number), number, form),
                choices=choices,
                optional=item.optional,
                section=sections.get(number),
            )
        )
    codes = d.missing_codes or RESPONSE_MISSING_REASONS
    return InstrumentForm(
        instrument=d.code,
        name=d.name,
        version=d.version,
        form=form,
        items=tuple(fields),
        missing_codes=tuple(Choice(c, MISSING_LABELS.get(c, c)) for c in codes),
    )


def parse_responses(f: InstrumentForm, posted: Mapping[str, str]) -> ParsedResponses:
    """The posted answers and missing codes as the assessment service takes them.

    Raises ValidationError (rule WEB-003) naming each field whose value is not one of the
    choices the form offers; an item left blank is unanswered.
    """
    problems: list[Problem] = []
    responses: dict[int, int | None] = {}
    reasons: dict[int, str] = {}
    codes = {c.value for c in f.missing_codes}
    for item in f.items:
        raw = (posted.get(item.name) or "").strip()
        missing = (posted.get(item.missing_name) or "").strip()
        if raw:
            if raw in {c.value for c in item.choices}:
                responses[item.number] = int(raw)
            else:
                problems.append(
                    Problem(
                        "form",
                        item.name,
                        raw,
                        "WEB-003",
                        "one of " + ", ".join(c.label for c in item.choices),
                    )
                )
        elif not item.optional:
            responses[item.number] = None
        if missing:
            if missing in codes:
                reasons[item.number] = missing
                responses.setdefault(item.number, None)
            else:
                problems.append(
                    Problem(
                        "form",
                        item.missing_name,
                        missing,
                        "WEB-003",
                        "one of " + ", ".join(sorted(codes)),
                    )
                )
    if problems:
        raise ValidationError(problems)
    return ParsedResponses(responses, reasons)


def posted_values(view_responses: Mapping[int, float | None]) -> dict[str, str]:
    """Stored responses as form values (``item_N`` -> text), e.g. to show a saved record."""
    return {
        f"item_{n}": "" if v is None else str(int(v)) for n, v in sorted(view_responses.items())
    }
