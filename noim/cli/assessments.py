"""Commands for assessments (instrument completions)."""

from __future__ import annotations

from datetime import date

import click

from noim.cli.common import (
    DATE,
    CliState,
    json_option,
    pass_state,
    print_table,
    reason_option,
    show_record,
)
from noim.services import assessments
from noim.services.assessments import AssessmentView


def _pairs(values: tuple[str, ...], option: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for item in values:
        number, sep, value = item.partition("=")
        if not sep or not number.strip().isdigit():
            raise click.BadParameter(
                f"{item!r}: expected ITEM=VALUE with a whole item number", param_hint=option
            )
        out[int(number)] = value.strip()
    return out


def _responses(values: tuple[str, ...]) -> dict[int, int | None]:
    out: dict[int, int | None] = {}
    for n, v in _pairs(values, "--item").items():
        if v and not v.lstrip("-").isdigit():
            raise click.BadParameter(
                f"item {n}: {v!r} is not a whole number (leave it empty for unanswered)",
                param_hint="--item",
            )
        out[n] = int(v) if v else None
    return out


def _show(view: AssessmentView) -> None:
    click.echo(
        f"Assessment {view.id}: {view.instrument} ({view.form or '-'}) for {view.child} at {view.timepoint}, "
        f"{view.respondent}, {view.assessed_on}; scoring {view.scoring_version}"
        + ("; OUTSIDE the visit window (flagged)" if view.out_of_window else "")
    )
    print_table(
        None,
        ["scale", "score"],
        [(k, "missing" if v is None else f"{v:g}") for k, v in view.scores.items()],
    )


@click.group("assessment")
def assessment_group() -> None:
    """Assessments: item responses and the scores derived from them."""


@assessment_group.command("add")
@click.argument("child_id")
@click.option("--timepoint", required=True, help="Timepoint code, e.g. baseline, 15m, 30m.")
@click.option("--instrument", required=True, help="Instrument code, e.g. sdq.")
@click.option("--form", help="Form or version, e.g. 2-4 or 4-17 for the SDQ.")
@click.option(
    "--respondent",
    default="carer",
    show_default=True,
    help="Who answered: carer, birth_parent, teacher ...",
)
@click.option("--on", "assessed_on", type=DATE, required=True, help="Date completed (YYYY-MM-DD).")
@click.option(
    "--item",
    "items",
    multiple=True,
    metavar="N=VALUE",
    help="An item's answer (repeat; N= with no value for unanswered).",
)
@click.option(
    "--missing",
    "missing",
    multiple=True,
    metavar="N=REASON",
    help="Why item N is missing: not_answered, dont_know, refused, not_applicable, illegible.",
)
@json_option
@pass_state
def assessment_add(
    state: CliState,
    child_id: str,
    timepoint: str,
    instrument: str,
    form: str | None,
    respondent: str,
    assessed_on: date,
    items: tuple[str, ...],
    missing: tuple[str, ...],
    as_json: bool,
) -> None:
    """Record CHILD_ID's answers to an instrument; the scores are computed by the published rules."""
    view = assessments.record_assessment(
        state.db(),
        state.actor(),
        child_id,
        timepoint,
        instrument,
        assessed_on,
        _responses(items),
        respondent,
        form,
        _pairs(missing, "--missing"),
    )
    show_record(view, as_json, _show)


@assessment_group.command("show")
@click.argument("assessment_id", type=int)
@json_option
@pass_state
def assessment_show(state: CliState, assessment_id: int, as_json: bool) -> None:
    """Show an assessment's scores."""
    view = assessments.get_assessment(state.db(), state.actor(), assessment_id)
    show_record(view, as_json, _show)


@assessment_group.command("correct")
@click.argument("assessment_id", type=int)
@click.option(
    "--item",
    "item",
    required=True,
    metavar="N=VALUE",
    help="The corrected answer (N= for unanswered).",
)
@reason_option()
@json_option
@pass_state
def assessment_correct(
    state: CliState, assessment_id: int, item: str, reason: str, as_json: bool
) -> None:
    """Correct one answer of an assessment and rescore it."""
    ((number, value),) = _responses((item,)).items()
    view = assessments.correct_response(
        state.db(), state.actor(), assessment_id, number, value, reason
    )
    show_record(view, as_json, _show)
