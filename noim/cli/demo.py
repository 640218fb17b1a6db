"""``noim demo``: build a synthetic trial through the real services and print a summary."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import click

from noim.cli.common import fail, print_json, print_table
from noim.config import Settings
from noim.db.session import Database
from noim.domain.trialdef import load_definition
from noim.services import demo
from noim.services.users import resolve_actor

DEFAULT_DEMO_DATABASE = "sqlite:///demo/noim.db"
EFFECT_KEYS = {"sdq": "sdq", "permanence": "permanence_hr"}


def _effects(values: tuple[str, ...]) -> demo.Effects:
    """``sdq=-2`` / ``permanence=1.3`` options as Effects (defaults for those not given)."""
    given: dict[str, float] = {}
    for value in values:
        key, sep, number = value.partition("=")
        field = EFFECT_KEYS.get(key.strip().lower())
        try:
            amount = float(number)
        except ValueError:
            amount = float("nan")
        if not sep or field is None or amount != amount:
            fail(f"--effect {value!r}: expected sdq=NUMBER or permanence=NUMBER")
        if field == "permanence_hr" and amount <= 0:
            fail(f"--effect {value!r}: the permanence hazard ratio must be above 0")
        given[field] = amount
    return demo.Effects(**given)


@click.command("demo")
@click.option(
    "--database",
    "database_opt",
    metavar="URL",
    default=DEFAULT_DEMO_DATABASE,
    show_default=True,
    help="Where to build the demonstration trial (created when missing; must hold nothing "
    "beyond a fresh `noim init`).",
)
@click.option(
    "--trial",
    "trial_file",
    default="nim",
    show_default=True,
    help="Trial definition file or built-in name.",
)
@click.option(
    "--families",
    "n_families",
    type=click.IntRange(1, 100_000),
    default=demo.DEFAULT_FAMILIES,
    show_default=True,
    help="Number of randomised families (screened families not enrolled come on top).",
)
@click.option(
    "--seed", type=int, default=2026, show_default=True, help="Seed of the random generator."
)
@click.option(
    "--effect",
    "effect_opts",
    multiple=True,
    metavar="KEY=VALUE",
    help="True effect of NIM: sdq=D (difference in SDQ total difficulties at follow-up, "
    "default -2) or permanence=HR (hazard ratio of a permanence decision, default 1.3). "
    "Repeat for both.",
)
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Date the synthetic trial has reached (YYYY-MM-DD, not after today; default today).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo/reports"),
    show_default=True,
    help="Where to write the open and closed interim reports (read from a data freeze).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo_command(
    database_opt: str,
    trial_file: str,
    n_families: int,
    seed: int,
    effect_opts: tuple[str, ...],
    as_of: object,
    out: Path,
    as_json: bool,
) -> None:
    """Build a synthetic NIM trial through the real services and print a summary.

    Families are recruited at both sites over four years ending a year before the
    as-of date, screened, consented, randomised (back-dated), followed up with
    placements, legal events, SDQ/BITSEA/PedsQL assessments, missed visits,
    withdrawals, SAEs, deviations and service use; every record passes the services'
    rules and is audited.  The same seed and as-of date build the same trial.  Then a
    data freeze is made and the open and closed interim reports are written from it to
    --out.

    On SQLite the trial is built in a side file (DATABASE.partial) moved into place only
    once the build and the freeze are complete: a build interrupted part-way leaves
    nothing behind, and the same command starts again.  A PostgreSQL database must be
    empty (fresh from `noim init` at most); after an interrupted build, drop and
    re-create it.
    """
    effects = _effects(effect_opts)
    day = as_of.date() if hasattr(as_of, "date") else None
    if day is not None and day > date.today():
        fail(f"--as-of {day}: expected a date not after today ({date.today()})")
    definition = load_definition(trial_file)
    url = Settings.resolve(database=database_opt).database_url
    started = time.perf_counter()
    say = None if as_json else (lambda stage: click.echo(f"... {stage}", err=True))
    with demo.staged_build(url) as build_url:  # SQLite: in place only once complete
        r = demo.build_demo(build_url, definition, n_families, seed, effects, day, say)
        if say is not None:
            say("freezing the data and writing the interim reports")
        db = Database(build_url)
        try:
            admin = resolve_actor(db, demo.DEMO_ADMIN)
            from noim.reports.publish import freeze_and_report  # matplotlib: only here

            published = freeze_and_report(db, admin, out, label=f"demo (seed {seed})")
        finally:
            db.dispose()
    seconds = round(time.perf_counter() - started, 1)
    summary = {
        "database": url,
        "as_of": r.as_of.isoformat(),
        "seed": seed,
        "effects": {"sdq": effects.sdq, "permanence_hr": effects.permanence_hr},
        "screened": r.screened,
        "families": r.families,
        "children": r.children,
        "randomised": r.randomised,
        "visits": r.visits,
        "intervention": r.intervention,
        "permanence": r.permanence,
        "saes": r.saes,
        "deviations": r.deviations,
        "withdrawals": r.withdrawals,
        "freeze": {"id": published.freeze_id, "content_sha256": published.freeze_sha256},
        "reports": {
            "open": [str(p) for p in published.open_files],
            "closed": [str(p) for p in published.closed_files],
        },
        "primary_analysis": published.primary,
        "seconds": seconds,
    }
    if as_json:
        print_json(summary)
        return
    click.echo(f"Demonstration trial in {url} (as of {r.as_of}, built in {seconds} s)")
    rows: list[tuple[str, object]] = [
        ("families screened", r.screened),
        ("families randomised", r.families),
        ("children", r.children),
    ]
    rows += [(f"families randomised to {arm}", n) for arm, n in r.randomised.items()]
    rows += [(f"visits {status}", n) for status, n in r.visits.items()]
    rows += [(f"intervention {k}", n) for k, n in r.intervention.items()]
    rows += [(f"first permanence: {k}", n) for k, n in r.permanence.items()]
    rows += [("SAEs", r.saes), ("deviations", r.deviations), ("withdrawals", r.withdrawals)]
    print_table("Summary", ["", "n"], rows)
    click.echo(f"Users (act as one with --user NAME): {', '.join(r.users)}")
    click.echo(
        f"Web application: noim --database {url} serve, then log in at http://127.0.0.1:8000/ "
        f"as any of those users with the password {demo.DEMO_PASSWORD!r}"
    )
    p = published.primary
    if "estimate" in p:
        analysed = {
            k.removeprefix("n_analysed_"): v for k, v in p.items() if k.startswith("n_analysed_")
        }
        randomised = {
            k.removeprefix("n_randomised_"): v
            for k, v in p.items()
            if k.startswith("n_randomised_")
        }
        numbers = ", ".join(
            f"{arm} {n} of {randomised.get(arm, '?')}" for arm, n in analysed.items()
        )
        click.echo(
            f"Primary analysis (closed report): SDQ total difficulties at 30 months, "
            f"{p.get('comparison', 'difference')}: {p['estimate']:.2f} "
            f"(95% CI {p['lower']:.2f} to {p['upper']:.2f}); children analysed: {numbers}"
        )
    click.echo(
        f"Data freeze {published.freeze_id} (sha256 {published.freeze_sha256[:12]}); interim "
        f"reports: {out / 'open' / 'report.html'} (open), {out / 'closed' / 'report.html'} (closed)"
    )
