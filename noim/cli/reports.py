"""``noim report interim``: the open and closed interim reports for the DMC."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from noim.cli.common import DATE, CliState, fail, json_option, pass_state, print_json

#: as ``noim.reports.render.FORMATS`` (render loads matplotlib: only when a report is made)
FORMATS = ("html", "pdf")


@click.group("report")
def report_group() -> None:
    """Reports for the trial team and the Data Monitoring Committee."""


def _formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        fail(f"--format {text!r}: unknown {', '.join(bad)}; expected a list of html, pdf")
    return formats


@report_group.command("interim")
@click.option("--open", "kind", flag_value="open", help="The open report: everything pooled.")
@click.option(
    "--closed",
    "kind",
    flag_value="closed",
    help="The closed report: results by arm (needs read_closed_report, or --dummy-arms).",
)
@click.option(
    "--freeze",
    metavar="ID",
    help="Read every table's data from this data freeze (as of its date); a freeze made "
    "before reports were frozen is refused.",
)
@click.option("--as-of", type=DATE, help="Censoring date, YYYY-MM-DD (default: today).")
@click.option(
    "--dummy-arms",
    is_flag=True,
    help="With --closed: a blinded statistician gets the closed report on seeded dummy arms, "
    "every output labelled 'DUMMY ARMS: not the allocation'; roles that read the closed "
    "report get the real arms.",
)
@click.option(
    "--dummy-seed",
    type=int,
    help="Seed of the dummy arms (default fixed); with --dummy-arms.",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option(
    "--format",
    "formats",
    default="html,pdf",
    show_default=True,
    help="Comma-separated formats besides the CSV tables and report.json: html, pdf.",
)
@json_option
@pass_state
def interim(
    state: CliState,
    kind: str | None,
    freeze: str | None,
    as_of: date | None,
    dummy_arms: bool,
    dummy_seed: int | None,
    out: Path,
    formats: str,
    as_json: bool,
) -> None:
    """Write the open (--open) or closed (--closed) interim report to --out.

    The report holds the CONSORT flow, recruitment against target by site, baseline
    characteristics, retention and form completeness, overdue visits, open data queries,
    SAEs and deviations, permanence (cumulative incidence) and the primary outcome.  The
    tables are also written as CSV and the whole report as report.json.  With
    --closed --dummy-arms a blinded statistician gets the closed report on seeded dummy arms
    (--dummy-seed), every output labelled "DUMMY ARMS: not the allocation", to test it
    before unblinding; the same command gives roles that read the closed report the real
    arms.
    """
    if kind is None:
        fail("say which report: --open or --closed")
    if (dummy_arms or dummy_seed is not None) and kind != "closed":
        fail("--dummy-arms and --dummy-seed go with --closed (the open report is pooled)")
    if dummy_seed is not None and not dummy_arms:
        fail("--dummy-seed goes with --dummy-arms")
    from noim.reports import render

    report, paths = render.produce(
        state.db(),
        state.actor(),
        closed=kind == "closed",
        out=out,
        formats=_formats(formats),
        freeze=freeze,
        as_of=as_of,
        dummy_arms=dummy_arms,
        dummy_seed=dummy_seed,
    )
    if as_json:
        print_json({**render.report_json(report), "files": [str(p) for p in paths]})
        return
    click.echo(
        f"{report.header()['report']} of {report.trial_name} (data as of "
        f"{report.as_of.isoformat()}, {report.header()['source']}): {len(paths)} files in {out}"
    )
