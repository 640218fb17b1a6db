"""``noim report interim``: the open (pooled) and closed (by arm) interim reports.

One small trial (tests.factories.small_trial) per test, a copy of one built once per run; the
reports are built through the service (``noim.reports.render.produce``) and the CLI.  The open
report's HTML, PDF (text of its decompressed content streams), JSON and CSV files are searched
for every arm code and label of the trial definition.  A test that reads no PDF asks for none
(``NO_PDF``).
"""

from __future__ import annotations

import json
import re
import zlib
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import event

from noim.cli import noim_cli
from noim.db.session import Database
from noim.domain.exceptions import PermissionDenied
from noim.domain.trialdef import default_definition
from noim.extract import FreezeNotSupported
from noim.reports import render
from tests.conftest import Actors
from tests.factories import SmallTrial, small_trial_start

AS_OF = date(2026, 6, 30)
#: what a test that reads no PDF asks ``render.produce`` for (the CSV tables and JSON are
#: always written): drawing the PDF's pages is half the cost of a report
NO_PDF = ("html",)
LATER = date(2027, 6, 30)  # after the families randomised today


#: a test given ``trial`` starts from a copy of one 16-family trial (built once per run and
#: backend), the others from the initialised test database
prebuilt, db_url, trial = small_trial_start(16, no_baseline_under_months=24)
#: the module runs in one worker: it builds the trial while the other runs other tests
#: (rather than both waiting for it)
pytestmark = pytest.mark.xdist_group("reports_trial")


def arm_words() -> tuple[set[str], set[str]]:
    """(arm codes, arm names and site labels) from the trial definition."""
    definition = default_definition()
    codes = {a.code for a in definition.arms}
    labels = {a.name for a in definition.arms}
    for a in definition.arms:
        labels |= set(a.labels.values())
    for site in definition.sites:  # the intervention and comparator teams name the arm
        for team in site.teams:
            if team.arm:
                codes.add(team.code)
                labels.add(team.name)
    return codes, labels


def pdf_text(path: Path) -> str:
    """The text of a PDF written by matplotlib: the string literals of every text block
    (``BT ... ET``) of the inflated content streams, joined (kerning arrays split words into
    single characters), one block per line; plus the raw file (metadata)."""
    raw = path.read_bytes()
    lines = [raw.decode("latin-1")]
    for m in re.finditer(rb"stream\r?\n", raw):
        start = m.end()
        end = raw.find(b"endstream", start)
        try:
            body = zlib.decompress(raw[start:end].rstrip(b"\r\n"))
        except zlib.error:
            continue
        for block in re.findall(rb"BT(.*?)ET", body, flags=re.S):
            strings = re.findall(rb"\(((?:\\.|[^\\)])*)\)", block)
            text = b"".join(strings).replace(b"\\(", b"(").replace(b"\\)", b")")
            lines.append(text.decode("latin-1"))
    return "\n".join(lines)


def found(text: str, codes: set[str], labels: set[str]) -> list[str]:
    """Arm codes (whole words, case-sensitive) and labels (any case) found in ``text``."""
    hits = [c for c in codes if re.search(rf"(?<![A-Za-z0-9]){re.escape(c)}(?![A-Za-z0-9])", text)]
    return hits + [lb for lb in labels if lb.lower() in text.lower()]


def test_open_report_names_no_arm(
    db: Database, actors: Actors, trial: SmallTrial, tmp_path: Path
) -> None:
    codes, labels = arm_words()
    assert {"NIM", "SAU"} <= codes and {"GIFT", "LIFT"} <= labels
    from noim.services import consent, screening

    # free text that names an arm is redacted in the open report
    family = next(f for f in trial.arms if f.startswith("G"))
    child = trial.children[family][-1]
    gla = actors["coord_gla"]
    consent.record_withdrawal(db, gla, child, date(2026, 1, 5), "follow_up", "carer", "GIFT ended")
    screening.add_entry(db, gla, "GLA", date(2025, 1, 5), 1, False, "already seen by gift")
    out = tmp_path / "open"
    report, paths = render.produce(db, actors["datamanager"], closed=False, out=out, as_of=AS_OF)
    names = {p.name for p in paths}
    assert {"report.html", "report.pdf", "report.json", "flow.csv", "baseline.csv"} <= names
    assert {"recruitment.csv", "retention.csv", "sae_listing.csv", "primary_analysis.csv"} <= names
    for path in paths:
        if path.suffix == ".pdf":
            text = pdf_text(path)
            assert "Participant flow" in text  # the text streams are readable
        else:
            text = path.read_text(encoding="utf-8")
        assert found(text, codes, labels) == [], path.name
    data = json.loads((out / "report.json").read_text())
    assert data["trial"] == "BeST?" and list(data["consort"]["randomised"]) == ["all"]
    assert all("arm" not in row for rows in data["tables"].values() for row in rows)
    html = (out / "report.html").read_text()
    assert "<svg" in html and "<img" not in html and "http" not in html.split("<svg")[0]
    assert report.figures.keys() == {"consort", "recruitment", "cumulative_incidence"}
    reasons = data["consort"]["withdrawn_and_lost_reasons"]["all"]
    assert reasons["withdrawn from follow up"]["[redacted] ended"] == 1
    assert data["consort"]["not_eligible_reasons"]["already seen by [redacted]"] == 1


def test_closed_report_by_arm(
    db: Database, actors: Actors, trial: SmallTrial, tmp_path: Path
) -> None:
    _report, _ = render.produce(
        db, actors["dmc_chair"], closed=True, out=tmp_path, formats=NO_PDF, as_of=AS_OF
    )
    arms = sorted(set(trial.arms.values()))
    consort = json.loads((tmp_path / "report.json").read_text())["consort"]
    assert sorted(consort["randomised"]) == arms
    for arm in arms:  # the CONSORT numbers agree with what the factory randomised
        fams = [f for f, a in trial.arms.items() if a == arm]
        c = consort["randomised"][arm]
        assert c["families randomised"] == len(fams)
        assert c["children randomised"] == sum(len(trial.children[f]) for f in fams)
        assert c["analysed (ITT, SDQ at 30m; primary analysis)"] <= c["in the ITT set"]
        assert c["in the ITT set"] <= c["children randomised"]
    assert consort["screened"] == consort["eligible"] + consort["not_eligible"]
    assert consort["consented_enrolled"] == len(trial.arms)
    flow = (tmp_path / "flow.csv").read_text().splitlines()
    assert flow[0] == ",".join(["stage", *arms, "total"])
    # the primary analysis: every child with the outcome (babies without a baseline SDQ by
    # the missing-indicator method), intervention minus control, per arm numbers stated
    primary = pd.read_csv(tmp_path / "primary_analysis.csv").iloc[0]
    assert primary["comparison"] == "NIM - SAU" and "ANCOVA" in primary["method"]
    assert trial.no_baseline and primary["n_baseline_missing"] > 0
    for arm in arms:
        c = consort["randomised"][arm]
        assert primary[f"n_randomised_{arm}"] == c["children randomised"]
        assert primary[f"n_analysed_{arm}"] == c["analysed (ITT, SDQ at 30m; primary analysis)"]
        assert primary[f"n_outcome_{arm}"] == primary[f"n_analysed_{arm}"]
    html = (tmp_path / "report.html").read_text()
    assert "Allocated to" in html and "SAU - NIM" not in html
    assert "Effects are intervention minus control (NIM - SAU)" in html
    assert "negative estimate means fewer difficulties with the intervention" in html


@pytest.mark.parametrize("who", ["statistician", "datamanager", "coord_gla", "research_gla"])
def test_closed_report_refused_for_blinded_roles(
    db: Database, actors: Actors, who: str, tmp_path: Path
) -> None:
    with pytest.raises(PermissionDenied, match="read_closed_report"):
        render.produce(db, actors[who], closed=True, out=tmp_path)
    if who != "statistician":  # dummy arms are for the blinded analyst only
        with pytest.raises(PermissionDenied, match="read_closed_report"):
            render.produce(db, actors[who], closed=True, out=tmp_path, dummy_arms=True)
    assert not tmp_path.joinpath("report.json").exists()


def test_open_report_refused_without_capability(
    db: Database, actors: Actors, tmp_path: Path
) -> None:
    with pytest.raises(PermissionDenied, match="read_open_report"):
        render.produce(db, actors["coord_cro"], closed=False, out=tmp_path)


def test_reruns_are_byte_identical(
    db: Database, actors: Actors, trial: SmallTrial, tmp_path: Path
) -> None:
    user = actors["unblinded_stat"]
    _, first = render.produce(
        db, user, closed=True, out=tmp_path / "a", formats=NO_PDF, as_of=AS_OF
    )
    _, second = render.produce(
        db, user, closed=True, out=tmp_path / "b", formats=NO_PDF, as_of=AS_OF
    )
    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second, strict=True):
        if a.suffix in (".csv", ".json", ".html"):
            assert a.read_bytes() == b.read_bytes(), a.name


def test_cli_interim_json_and_refusal(
    db: Database, actors: Actors, trial: SmallTrial, tmp_path: Path
) -> None:
    runner = CliRunner()
    base = ["--database", db.url, "--user"]
    out = tmp_path / "r"
    args = ["report", "interim", "--open", "--out", str(out), "--as-of", "2026-06-30"]
    result = runner.invoke(noim_cli, [*base, "statistician", *args, "--format", "html", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["consort"]["randomised"]["all"]["families randomised"] == len(trial.arms)
    assert (out / "report.html").exists() and not (out / "report.pdf").exists()
    closed = ["report", "interim", "--closed", "--out", str(tmp_path / "c")]
    result = runner.invoke(noim_cli, [*base, "statistician", *closed])
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert "read_closed_report" in result.output
    # on dummy arms the blinded statistician gets it, and it says so
    dummy = [*closed, "--dummy-arms", "--dummy-seed", "3", "--format", "html", "--json"]
    result = runner.invoke(noim_cli, [*base, "statistician", *dummy])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["report"] == "closed interim report [DUMMY ARMS: not the allocation]"
    assert data["dummy_seed"] == 3 and sorted(data["consort"]["randomised"]) == [
        "DUMMY-A",
        "DUMMY-B",
    ]
    result = runner.invoke(noim_cli, [*base, "statistician", *args, "--dummy-arms"])
    assert result.exit_code == 1 and "go with --closed" in result.output
    result = runner.invoke(noim_cli, [*base, "dmc_chair", "report", "interim", "--out", "x"])
    assert result.exit_code == 1 and "--open or --closed" in result.output


def test_report_on_a_freeze_is_reproducible(
    db: Database, actors: Actors, trial: SmallTrial, tmp_path: Path
) -> None:
    """A report read from a data freeze names it and gives the same tables when re-run."""
    from noim.services import freezes

    info = freezes.create_freeze(db, actors["datamanager"], label="DMC 1")
    user = actors["unblinded_stat"]
    freeze = str(info.id)
    first, _ = render.produce(
        db, user, closed=True, out=tmp_path / "a", formats=NO_PDF, freeze=freeze
    )
    render.produce(db, user, closed=True, out=tmp_path / "b", formats=NO_PDF, freeze=freeze)
    assert first.freeze == str(info.id) and first.as_of == info.as_of
    assert f"data freeze {info.id}" in (tmp_path / "a" / "report.html").read_text()
    tables = sorted(p.name for p in (tmp_path / "a").glob("*.csv"))
    assert tables
    for name in tables:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    with pytest.raises(FreezeNotSupported):
        render.produce(
            db, user, closed=True, out=tmp_path / "c", freeze=str(info.id), as_of=info.as_of
        )


def _statements(db: Database, actors: Actors, tmp_path: Path) -> tuple[int, int, dict[str, Any]]:
    """SQL statements of the closed report built live and from a new freeze."""
    from noim.reports.interim import build
    from noim.services import freezes

    user = actors["unblinded_stat"]
    freeze = str(freezes.create_freeze(db, actors["admin"]).id)
    counts = []
    for kw in ({"as_of": LATER}, {"freeze": freeze}):
        statements: list[str] = []

        def before(conn: object, cursor: object, statement: str, *args: object) -> None:
            if not statement.startswith("BEGIN"):
                statements.append(statement)  # noqa: B023

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            report = build(db, user, closed=True, **kw)  # type: ignore[arg-type]
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
        counts.append(len(statements))
    return counts[0], counts[1], report.consort["randomised"]


def test_statement_count_does_not_grow_with_families(
    db: Database, actors: Actors, trial: SmallTrial, tmp_path: Path
) -> None:
    from noim.services import consent, randomisation, safety
    from tests.factories import family_with_children

    small, small_frozen, before = _statements(db, actors, tmp_path)
    coord = actors["coord_gla"]
    for _ in range(5):  # five more randomised families, each with an SAE and a deviation
        fam = family_with_children(db, coord, "GLA", (20, 30), entered=date(2025, 1, 6))
        for child in fam.children:
            consent.decide_eligibility(db, coord, child.trial_id, True, date(2025, 1, 10))
            consent.record_consent(
                db, coord, child.trial_id, "local_authority", "v3", date(2025, 1, 10)
            )
        randomisation.randomise(db, coord, fam.trial_id)
        child = fam.children[0].trial_id
        safety.add_sae(db, coord, child, date(2025, 2, 1), date(2025, 2, 2), "hospitalisation", "x")
        safety.add_deviation(db, coord, fam.trial_id, date(2025, 2, 3), "visit", "minor", "late")
    large, large_frozen, after = _statements(db, actors, tmp_path)
    families = sum(c["families randomised"] for c in after.values())
    assert families == sum(c["families randomised"] for c in before.values()) + 5
    assert large == small and small <= 50, (small, large)
    assert large_frozen == small_frozen and small_frozen <= 10, (small_frozen, large_frozen)


# --------------------------------------------------------------------------- reports from a freeze

#: the tables each operational area feeds (a change in the area must change the live table)
AREAS = {
    "screening": "screening.csv",
    "visits": "retention.csv",
    "queries": "open_queries.csv",
    "saes": "sae_counts.csv",
    "deviations": "deviation_counts.csv",
    "exits": "exit_reasons.csv",
}


def _outputs(folder: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.suffix in (".csv", ".json", ".html")
    }


def _change_every_area(db: Database, actors: Actors, trial: SmallTrial, on: date) -> None:
    """After the freeze: a screening entry, a missed visit, a query raised and another
    closed, an SAE, a deviation and a withdrawal (all dated ``on``: within the live as-of)."""
    from noim import extract
    from noim.services import consent, queries, safety, screening, visits

    gla, dm = actors["coord_gla"], actors["datamanager"]
    screening.add_entry(db, gla, "GLA", on, 2, False, "lives outside the area")
    seen = extract.visits(db, actors["admin"], as_of=on)
    open_ = seen[
        (seen["status"] == "scheduled")
        & (seen["site"] == "GLA")
        & (seen["window_start"] <= pd.Timestamp(on))
    ]
    child, timepoint = open_[["child_id", "timepoint"]].iloc[0]
    visits.record_missed(db, gla, str(child), str(timepoint), "carer moved away", today=on)
    family = next(f for f in trial.arms if f.startswith("G"))
    kid = trial.children[family][0]
    kept = queries.raise_query(db, dm, "children", kid, "Please check the sex", "sex")
    gone = queries.raise_query(db, dm, "children", kid, "Please check the date of birth")
    queries.resolve(db, dm, gone.id, "checked")
    queries.close(db, dm, gone.id)
    assert kept.status == "open"
    safety.add_sae(db, gla, kid, on, on, "hospitalisation", "admitted overnight")
    safety.add_deviation(db, gla, family, on, "visit", "minor", "visit done by phone")
    consent.record_withdrawal(
        db, gla, trial.children[family][-1], on, "intervention", "carer", "moved"
    )


def test_reports_from_a_freeze_ignore_every_later_change(
    db: Database, actors: Actors, trial: SmallTrial, tmp_path: Path
) -> None:
    """Both reports re-run on the same freeze after changes in every operational area are
    byte-identical (CSV, JSON, HTML); the live report changes in every area."""
    from noim.services import freezes

    info = freezes.create_freeze(db, actors["datamanager"], label="DMC 2")
    user = actors["unblinded_stat"]
    first: dict[str, dict[str, bytes]] = {}
    for kind in ("open", "closed"):
        out = tmp_path / "first" / kind
        formats = render.FORMATS if kind == "open" else NO_PDF  # the open one's PDF is read
        render.produce(
            db, user, closed=kind == "closed", out=out, formats=formats, freeze=str(info.id)
        )
        first[kind] = _outputs(out)
    live_before = tmp_path / "live_before"  # only its CSV tables are read
    render.produce(db, user, closed=True, out=live_before, formats=(), as_of=info.as_of)
    _change_every_area(db, actors, trial, info.as_of)
    for kind in ("open", "closed"):
        out = tmp_path / "again" / kind
        render.produce(
            db, user, closed=kind == "closed", out=out, formats=NO_PDF, freeze=str(info.id)
        )
        again = _outputs(out)
        assert again.keys() == first[kind].keys()
        for name, content in again.items():
            assert content == first[kind][name], f"{kind} {name}"
    live_after = tmp_path / "live_after"
    render.produce(db, user, closed=True, out=live_after, formats=(), as_of=info.as_of)
    for area, table in AREAS.items():
        before = (live_before / table).read_bytes()
        assert (live_after / table).read_bytes() != before, area
        assert first["closed"][table] == before, area  # the freeze = live data of its day
    # the open report from the freeze names no arm either
    codes, labels = arm_words()
    for path in (tmp_path / "first" / "open").iterdir():
        text = pdf_text(path) if path.suffix == ".pdf" else path.read_text(encoding="utf-8")
        assert found(text, codes, labels) == [], path.name
    listing = (tmp_path / "first" / "open" / "sae_listing.csv").read_text().splitlines()[0]
    assert "arm" not in listing.split(",")


def test_a_freeze_without_the_report_datasets_is_refused(
    db: Database, actors: Actors, trial: SmallTrial, tmp_path: Path
) -> None:
    """A freeze made before reports were frozen (only the analysis datasets) is refused with
    one line naming the freeze, the missing datasets and what to do."""
    from noim import extract
    from noim.domain.exceptions import NotFound
    from noim.reports.interim import FreezeIncomplete
    from noim.services import freezes

    old = [
        "children",
        "permanence",
        "scores",
        "scores_wide",
        "placements",
        "reentries",
        "costs",
        "allocations",
        "timepoints",
    ]
    info = freezes.create_freeze(db, actors["datamanager"], label="old", datasets=old)
    assert {d.name for d in info.datasets} == set(old)
    with pytest.raises(FreezeIncomplete) as caught:
        render.produce(db, actors["dmc_chair"], closed=True, out=tmp_path, freeze=str(info.id))
    message = str(caught.value)
    assert f"data freeze {info.id} ('old')" in message and "make a new freeze" in message
    for name in ("trial", "screening", "visits", "queries", "saes", "deviations", "exits"):
        assert name in message
    assert not (tmp_path / "report.json").exists()
    with pytest.raises(NotFound, match="holds no dataset screening"):
        extract.screening(db, actors["statistician"], freeze=info.id)
    result = CliRunner().invoke(
        noim_cli,
        [
            *("--database", db.url, "--user", "dmc_chair", "report", "interim", "--closed"),
            *("--freeze", str(info.id), "--out", str(tmp_path / "cli")),
        ],
    )
    assert result.exit_code == 1 and result.output.startswith(f"error: data freeze {info.id} ")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert freezes.verify_freeze(db, actors["admin"], info.id)  # still a sound freeze


def test_the_open_report_never_fetches_an_arm(
    db: Database, actors: Actors, trial: SmallTrial
) -> None:
    """Live, the open report's datasets are built as its blinded reader sees them: masked
    codes, no statement selects an allocated arm (the closed report's does); nor does the
    blinded statistician's closed report on dummy arms."""
    from noim.reports.interim import build

    statements: list[str] = []

    def listen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        report = build(db, actors["statistician"], closed=True, as_of=AS_OF, dummy_arms=True)
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)
    assert report.dummy and statements
    assert not [s for s in statements if "allocations.arm_code" in s or "arms.name" in s]
    for closed in (False, True):
        statements: list[str] = []

        def before(conn: object, cursor: object, statement: str, *args: object) -> None:
            statements.append(statement)  # noqa: B023

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            build(db, actors["dmc_chair"], closed=closed, as_of=AS_OF)
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
        fetched = [s for s in statements if "allocations.arm_code" in s or "arms.name" in s]
        assert bool(fetched) == closed, closed


def test_closed_report_on_dummy_arms_for_the_blinded_statistician(
    db: Database, actors: Actors, trial: SmallTrial, tmp_path: Path
) -> None:
    """A blinded statistician asking for the closed report on dummy arms gets every section
    of it on seeded dummy arms: each table starts with the label column, each section title,
    the figures, the HTML, PDF and JSON say "DUMMY ARMS: not the allocation", and no arm
    code, name or arm team appears.  The unblinded statistician gets the same tables on the
    real arms from the same call."""
    from noim.extract import dummy

    fake, paths = render.produce(
        db, actors["statistician"], closed=True, out=tmp_path / "d", as_of=AS_OF, dummy_arms=True
    )
    real, _ = render.produce(  # only its JSON and tables are read
        db,
        actors["unblinded_stat"],
        closed=True,
        out=tmp_path / "r",
        formats=(),
        as_of=AS_OF,
        dummy_arms=True,
    )
    label = dummy.DUMMY_LABEL
    assert fake.closed and fake.dummy and fake.dummy_seed == dummy.DEFAULT_SEED
    assert not real.dummy and real.header()["arm_coding"] == "allocated"
    codes, labels = arm_words()
    for path in paths:
        text = pdf_text(path) if path.suffix == ".pdf" else path.read_text(encoding="utf-8")
        assert found(text, codes, labels) == [], path.name
        if path.suffix == ".csv":  # every row labelled (a table without rows: its header)
            first = pd.read_csv(path, dtype=str, keep_default_na=False)
            assert first.columns[0] == "arm_coding", path.name
            assert set(first["arm_coding"]) == ({label} if len(first) else set()), path.name
        else:
            assert label in text, path.name
    data = json.loads((tmp_path / "d" / "report.json").read_text())
    assert data["arm_coding"] == "dummy" and data["arm_label"] == label
    consort = data["consort"]
    assert sorted(consort["randomised"]) == list(dummy.DUMMY_ARMS)
    per_arm = [consort["randomised"][a]["families randomised"] for a in dummy.DUMMY_ARMS]
    assert sum(per_arm) == len(trial.arms) and abs(per_arm[0] - per_arm[1]) <= 1
    assert consort["arms"] == dict.fromkeys(dummy.DUMMY_ARMS, label)
    assert all(sec.title.startswith(f"[{label}] ") for sec in fake.sections)
    assert all(label in fig.get_suptitle() for fig in fake.figures.values())
    primary = fake.tables()["primary_analysis"]
    assert primary["comparison"].tolist() == ["DUMMY-B - DUMMY-A"]
    # the real arms through the same code: the same tables with the same columns
    arms = sorted(set(trial.arms.values()))
    any_arm = re.compile("|".join(map(re.escape, [*dummy.DUMMY_ARMS, *arms])))

    def columns(table: pd.DataFrame) -> list[str]:  # the arms' names aside
        return [any_arm.sub("ARM", str(c)) for c in table.columns if c != "arm_coding"]

    assert fake.tables().keys() == real.tables().keys()
    for name, table in fake.tables().items():
        assert columns(table) == columns(real.tables()[name]), name
    assert (
        sorted(json.loads((tmp_path / "r" / "report.json").read_text())["consort"]["randomised"])
        == arms
    )


def test_retention_and_primary_status_count_not_yet_due_apart(
    db: Database, actors: Actors, trial: SmallTrial, tmp_path: Path
) -> None:
    """On 2026-02-01 the families randomised last have their 30-month visits not yet due: the
    retention table counts them apart (visits = not yet due + due) and the primary outcome
    status table calls their outcomes not yet reached, not missing."""
    on = date(2026, 2, 1)
    user = actors["unblinded_stat"]  # only the report's tables are read
    report = render.produce(db, user, closed=True, out=tmp_path, formats=(), as_of=on)[0]
    tables = report.tables()
    ret = tables["retention"]
    assert (ret["visits"] == ret["not_yet_due"] + ret["due"]).all()
    parts = ret["completed"] + ret["missed"] + ret["not_required"] + ret["overdue"]
    assert (ret["due"] == parts).all()
    assert (ret["due_with_form"] <= ret["due"]).all()
    late = ret[ret["timepoint"] == "30m"]
    assert late["not_yet_due"].sum() > 0
    status = tables["primary_status"]
    outcome = status[status["variable"] == "sdq_total_difficulties_30m"]
    flow = tables["flow"].set_index("stage")
    assert (
        outcome["not_yet_reached"].sum()
        == flow.loc["ITT, 30m outcome not yet reached (visit not yet due)", "total"]
    )
    assert (
        outcome[["observed", "missing", "not_yet_reached"]].to_numpy().sum()
        == flow.loc["in the ITT set", "total"]
    )
