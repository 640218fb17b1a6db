"""End to end in a real browser: Debian's Chromium driven by Playwright (issue 12, sections 4-5).

Each journey runs once per backend on a fresh test database served by a live uvicorn server,
and is done the way a person does it: clicking links and buttons, typing into labelled
fields. Every page a journey visits is checked for usability (issue 12, section 4) by
``visit``: every input has a label, the page fits a 1366x768 laptop and a 768x1024 tablet
without scrolling sideways, and a screenshot is saved to the folder the test prints
(``tests.browser.shots_dir()``).

1. A coordinator registers a family of two children, records eligibility and consent,
   randomises (sees what is missing, confirms, sees the arm), adds a placement and a move,
   then follows the due baseline visit's SDQ from home (one click), enters it item by
   item and sees the scores and the visit complete. Dates are typed dd/mm/yyyy; one form is
   filled with the keyboard alone; a rejected form shows the error beside its field,
   announces it and keeps what was typed.
2. The data manager raises a query from a child's page; the coordinator answers it from
   home.
3. A DMC member downloads the closed report; a blinded statistician has no link to it and
   is refused the URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from noim.db.models import Allocation, AuditLog, DataQuery
from noim.db.session import Database
from noim.domain.durations import add_months
from noim.services import freezes, randomisation
from noim.web.app import create_app
from noim.web.forms import fmt_date
from tests.browser import browser, live_server, shot, shots_dir  # noqa: F401  (fixtures)
from tests.browser import page as page
from tests.conftest import Actors
from tests.factories import family_with_children, small_trial
from tests.web.conftest import TEST_PASSWORD, give_passwords

if TYPE_CHECKING:
    from playwright.sync_api import Page

LAPTOP = {"width": 1366, "height": 768}
TABLET = {"width": 768, "height": 1024}
REPORT_TIMEOUT_MS = 120_000

#: every visible input, select and textarea without a label (its outerHTML, shortened)
UNLABELLED_JS = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden')
  .filter(el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
                  return r.width > 0 && r.height > 0 && s.visibility !== 'hidden'; })
  .filter(el => !(el.getAttribute('aria-label') || '').trim()
                && !el.getAttribute('aria-labelledby')
                && !Array.from(el.labels || []).some(l => l.textContent.trim()))
  .map(el => el.outerHTML.slice(0, 160))"""

#: how far the page scrolls sideways, and the elements that stick out past the viewport
OVERFLOW_JS = """() => {
  const doc = document.scrollingElement;
  const wide = Array.from(document.querySelectorAll('body *'))
    .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
    .filter(el => !el.closest('.table-wrap'))
    .slice(0, 5).map(el => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right));
  return {scroll: doc.scrollWidth, inner: window.innerWidth, wide: wide};
}"""


class Journey:
    """The browser page and what has been visited: each page checked once for usability."""

    def __init__(self, page: Page, base: str, prefix: str) -> None:
        self.page = page
        self.base = base
        self.prefix = prefix
        self.visited: list[str] = []

    def visit(self, name: str, tablet_shot: bool = False) -> None:
        """Check the page the browser shows now (labels, laptop and tablet widths) and save
        a screenshot ``<prefix>-<nn>-<name>.png`` (and ``...-tablet.png`` when asked)."""
        page = self.page
        page.wait_for_load_state("load")
        self.visited.append(page.url)
        unlabelled = page.evaluate(UNLABELLED_JS)
        assert unlabelled == [], f"{name} ({page.url}): inputs without a label: {unlabelled}"
        for size in (TABLET, LAPTOP):  # the laptop last: the screenshot is taken at it
            page.set_viewport_size(size)  # type: ignore[arg-type]
            if tablet_shot and size is TABLET:
                shot(page, f"{self.prefix}-{len(self.visited):02d}-{name}-tablet")
            fit = page.evaluate(OVERFLOW_JS)
            assert fit["scroll"] <= fit["inner"], (
                f"{name} ({page.url}) scrolls sideways at {size['width']}x{size['height']}: "
                f"{fit['scroll']} > {fit['inner']}; too wide: {fit['wide']}"
            )
        shot(page, f"{self.prefix}-{len(self.visited):02d}-{name}")

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def log_in(self, name: str) -> None:
        page = self.page
        self.go("/login")
        self.visit("login")
        page.get_by_label("User name").fill(name)
        page.get_by_label("Password").fill(TEST_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(self.base + "/")

    def log_out(self) -> None:
        self.page.get_by_role("button", name=re.compile("Log out", re.I)).click()
        self.page.wait_for_url(re.compile(r"/login"))


@pytest.fixture
def server(db: Database) -> Iterator[str]:
    """The web application over the test database, served on loopback."""
    give_passwords(db)
    with live_server(create_app(db)) as url:
        yield url


def typed_date(scope: Any, label: str) -> Any:
    """The typed dd/mm/yyyy input labelled ``label`` (not the picker beside it)."""
    return scope.locator("input.date-input").and_(scope.get_by_label(label))


def count(db: Database, model: type) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_coordinator_journey(
    page: Page, server: str, db: Database, actors: Actors, backend: str
) -> None:
    randomisation.setup(db, actors["admin"], 4242)  # the trial's set-up, done once by an admin
    j = Journey(page, server, f"{backend}-coordinator")
    today = date.today()
    entered = today - timedelta(weeks=6)  # the baseline visit (4 to 14 weeks) is due now
    older_born = add_months(entered, -38)  # SDQ 2-4 at baseline
    younger_born = add_months(entered, -14)
    print(f"screenshots: {shots_dir()}")

    j.log_in("coord_gla")
    j.visit("home")
    page.get_by_role("link", name="Register a family").first.click()
    j.visit("register-family")

    # register a family of two children: dates typed dd/mm/yyyy
    page.get_by_label("Site").select_option("GLA")
    page.get_by_label("Local authority").select_option("GCC")
    first = page.get_by_role("group", name="Child 1")
    typed_date(first, "Date of birth").fill(fmt_date(older_born))
    first.get_by_label("Sex").select_option("female")
    typed_date(first, "Date entered care").fill(fmt_date(entered))
    second = page.get_by_role("group", name=re.compile("Child 2"))
    typed_date(second, "Date of birth").fill(fmt_date(younger_born))
    second.get_by_label("Sex").select_option("male")
    typed_date(second, "Date entered care").fill(fmt_date(entered))
    page.get_by_role("button", name="Register family").click()

    page.wait_for_url(re.compile(r"/families/[^/]+/eligibility$"))
    j.visit("eligibility")
    steps = page.get_by_role("navigation", name="Enrolment steps")
    assert steps.get_by_role("link", name="Eligibility").get_attribute("aria-current") == "page"
    assert steps.locator("li").first.evaluate("li => getComputedStyle(li).listStyleType") == "none"
    family = page.url.rsplit("/", 2)[-2]
    children = [
        h.inner_text().removeprefix("Child ").strip()
        for h in page.get_by_role("heading", level=2).filter(has_text="Child ").all()
    ]
    assert len(children) == 2, children
    print(f"family {family}, children {children}")

    # eligibility: a mistyped date is refused beside its field, announced, and kept
    decided = fmt_date(today - timedelta(days=3))
    one = page.get_by_role("region", name=f"Child {children[0]}")
    one.get_by_role("radio", name="Yes").check()
    typed_date(one, "Date decided").fill("31/02/" + str(today.year))
    before = count(db, AuditLog)
    one.get_by_role("button", name=re.compile("Save eligibility")).click()
    page.wait_for_load_state("load")
    summary = page.get_by_role("alert")
    assert summary.is_visible() and "Not saved" in summary.inner_text()
    assert page.evaluate("document.activeElement.id") == "error-summary"  # announced
    one = page.get_by_role("region", name=f"Child {children[0]}")
    box = typed_date(one, "Date decided")
    assert box.get_attribute("aria-invalid") == "true"
    assert box.input_value() == "31/02/" + str(today.year)  # what was typed is kept
    error = page.locator("#" + str(box.get_attribute("aria-describedby")).split()[-1])
    assert "dd/mm/yyyy" in error.inner_text()  # beside the field, saying what is expected
    assert one.get_by_role("radio", name="Yes").is_checked()
    assert count(db, AuditLog) == before  # nothing written
    j.visit("eligibility-rejected")
    # the picker beside a typed date is named after the date, without "(required)"
    assert one.get_by_role("textbox", name="Pick Date decided", exact=True).count() == 1
    box.fill(decided)
    one.get_by_role("button", name=re.compile("Save eligibility")).click()
    page.wait_for_load_state("load")
    two = page.get_by_role("region", name=f"Child {children[1]}")
    two.get_by_role("radio", name="Yes").check()
    typed_date(two, "Date decided").fill(decided)
    two.get_by_role("button", name=re.compile("Save eligibility")).click()
    page.wait_for_load_state("load")
    for child in children:
        region = page.get_by_role("region", name=f"Child {child}")
        assert "eligible on " + decided in region.inner_text()
    j.visit("eligibility-done")

    # consent: the first child by mouse, the second with the keyboard alone
    page.get_by_role("link", name="Next: consent").click()
    page.wait_for_url(re.compile(r"/consent$"))
    j.visit("consent")
    one = page.get_by_role("region", name=f"Child {children[0]}")
    one.get_by_label(re.compile("given by")).select_option("local_authority")
    one.get_by_label("Consent form version").fill("v3")
    typed_date(one, "Date of consent").fill(decided)
    one.get_by_role("button", name=re.compile("Record consent")).click()
    page.wait_for_load_state("load")
    assert (
        "no consent yet" not in page.get_by_role("region", name=f"Child {children[0]}").inner_text()
    )
    keyboard_consent(page, children[1], decided)
    assert (
        "no consent yet" not in page.get_by_role("region", name=f"Child {children[1]}").inner_text()
    )
    j.visit("consent-done")

    # randomise: what is missing is shown first (nothing now), then a confirmation
    page.get_by_role("link", name="Next: randomise").click()
    page.wait_for_url(re.compile(r"/randomise$"))
    assert "ready to randomise" in page.get_by_role("main").inner_text()
    j.visit("randomise-confirm")
    page.get_by_role("button", name=f"Randomise family {family}").click()  # not confirmed
    page.wait_for_load_state("load")
    assert page.get_by_role("alert").is_visible()
    assert count(db, Allocation) == 0
    randomise_with_keyboard(page, family)
    allocation = page.get_by_role("status").filter(has_text="Allocation")
    arm = allocation.locator("dd.arm").inner_text()
    assert re.fullmatch(r"(GIFT \(NIM\)|Enhanced social work service \(SAU\))", arm), arm
    assert count(db, Allocation) == 1
    j.visit("randomised")

    # the next task is one click from home: the baseline visit of the older child
    page.get_by_role("link", name="Home").first.click()
    page.wait_for_url(j.base + "/")
    j.visit("home-after-randomising", tablet_shot=True)
    followups = page.get_by_role("table").filter(has_text="Soonest first")
    row = followups.get_by_role("row").filter(has_text=children[0])
    assert "baseline" in row.inner_text()
    # each instrument still to enter is its own link: the SDQ's form opens at once
    assert row.get_by_role("link", name=re.compile(r"Enter the PedsQL")).count() == 1
    row.get_by_role("link", name=re.compile(r"Enter the SDQ")).click()
    page.wait_for_url(re.compile(r"/assessments/new\?instrument=sdq&visit=\d+$"))
    j.visit("assessment-from-home")
    assert "(2-4 form)" in page.get_by_role("heading", level=1).inner_text()
    typed_date(page, "Assessment date").fill(fmt_date(today))
    items = page.locator("fieldset.item").filter(has=page.get_by_role("radio", name="Not true"))
    assert items.count() == 25
    for i in range(items.count()):  # item by item, as on paper
        items.nth(i).get_by_role("radio", name="Somewhat true").check()
    j.visit("sdq-filled", tablet_shot=True)
    page.get_by_role("button", name="Save and score").click()
    page.wait_for_url(re.compile(r"/assessments/\d+$"))
    scores = page.get_by_role("table", name="Scores")
    total = scores.get_by_role("row").filter(has_text=re.compile("total", re.I)).first
    assert total.get_by_role("cell").last.inner_text() == "20"  # 20 difficulties items at 1
    facts = page.locator("dl.facts").inner_text()
    assert "completed in window on " + fmt_date(today) in facts, facts
    j.visit("sdq-scores")
    # the next form of the visit is one click away: the PedsQL, still expected
    page.get_by_role("link", name="Next: the other forms of this visit").click()
    page.wait_for_url(re.compile(r"/assessments/new\?visit=baseline$"))
    assert page.get_by_role("link", name=re.compile(r"Enter the PEDSQL")).count() == 1

    # the child's page: the placements, the status grid with the SDQ complete
    page.get_by_role("link", name=f"Child {children[0]}").first.click()
    page.wait_for_url(re.compile(f"/children/{children[0]}$"))
    j.visit("child")
    page.get_by_role("link", name="Add a placement").click()
    page.wait_for_url(re.compile(r"/placements/new$"))
    j.visit("placement-new")
    placed = today - timedelta(weeks=6)
    typed_date(page, "Start date").fill(fmt_date(placed))
    page.get_by_label("Type of placement").select_option(index=1)
    page.get_by_role("button", name="Add placement").click()
    page.wait_for_url(re.compile(f"/children/{children[0]}$"))
    page.get_by_role("link", name=re.compile("Move the child from placement")).click()
    page.wait_for_url(re.compile(r"/move$"))
    j.visit("placement-move")
    typed_date(page, "Date of the move").fill(fmt_date(today - timedelta(weeks=2)))
    page.get_by_label("Why the placement ended").select_option(index=1)
    page.get_by_label("Type of placement").select_option(index=2)
    page.get_by_role("button", name="Record the move").click()
    page.wait_for_url(re.compile(f"/children/{children[0]}$"))
    j.visit("child-after-move", tablet_shot=True)
    main = page.get_by_role("main").inner_text()
    assert "1 move" in main, main[:2000]
    grid = page.get_by_role("table", name=re.compile("Visits and forms"))
    baseline = grid.get_by_role("row").filter(has_text="Baseline").inner_text()
    assert re.search(r"complete\s+" + re.escape(fmt_date(today)), baseline), baseline
    page.get_by_role("link", name=family, exact=True).first.click()
    page.wait_for_url(re.compile(f"/families/{family}$"))
    assert page.get_by_role("table", name=re.compile("Visits and forms")).count() == 2
    j.visit("family")
    print(f"{len(j.visited)} pages checked: {j.visited}")


def test_query_journey(page: Page, server: str, db: Database, actors: Actors, backend: str) -> None:
    """The data manager raises a query from a child's page; the coordinator answers it from
    home (one click)."""
    family = family_with_children(db, actors["coord_gla"], "GLA", (10,))
    child = family.children[0].trial_id
    j = Journey(page, server, f"{backend}-query")
    j.log_in("datamanager")
    j.visit("datamanager-home")
    j.go(f"/children/{child}")
    j.visit("datamanager-child")
    page.get_by_role("link", name="Raise a query on the date of birth").click()
    page.wait_for_url(re.compile(r"/queries/new\?"))
    assert page.get_by_label("Table").input_value() == "children"
    assert page.get_by_label("Record").input_value() == child
    assert page.get_by_label("Field").input_value() == "date_of_birth"
    j.visit("query-new")
    page.get_by_label("Question for the site").fill(
        "Please check the date of birth against the birth certificate."
    )
    page.get_by_role("button", name="Raise the query").click()
    page.wait_for_url(re.compile(r"/queries/\d+$"))
    query_id = page.url.rsplit("/", 1)[-1]
    assert "open" in page.get_by_role("heading", level=1).inner_text()
    j.visit("query-raised")
    page.get_by_role("link", name="Queries").first.click()
    page.wait_for_url(re.compile(r"/queries"))
    assert page.get_by_role("link", name=re.compile(rf"\b{query_id}\b")).count() >= 1
    j.visit("datamanager-queries")
    j.log_out()

    j.log_in("coord_gla")
    j.visit("coordinator-home")
    waiting = page.get_by_role("table").filter(has_text="Still missing")
    assert "eligibility not confirmed" in waiting.inner_text()  # what the gate still needs
    queries = page.get_by_role("table").filter(has_text="Question")
    queries.get_by_role("link", name=f"Query {query_id}").click()  # one click from home
    page.wait_for_url(re.compile(rf"/queries/{query_id}$"))
    j.visit("coordinator-query")
    before = count(db, DataQuery)
    page.get_by_role("button", name="Answer the query").click()  # no answer typed: refused
    page.wait_for_load_state("load")
    assert page.get_by_role("alert").count() >= 1
    assert "open" in page.get_by_role("heading", level=1).inner_text()
    page.get_by_label("Message").fill("Checked: the birth certificate gives the same date.")
    page.get_by_role("button", name="Answer the query").click()
    page.wait_for_load_state("load")
    assert "answered" in page.get_by_role("heading", level=1).inner_text()
    assert "the birth certificate gives the same date" in page.get_by_role("main").inner_text()
    assert count(db, DataQuery) == before
    j.visit("coordinator-answered")


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching ``selector`` has the focus (as a person would)."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} not reached with {limit} presses of Tab")


def keyboard_consent(page: Page, child: str, on: str) -> None:
    """Record the consent for ``child`` with the keyboard alone: Tab, typing, Enter."""
    number = int(child.rsplit("-", 2)[-2])
    n = f"c{number}_"
    page.keyboard.press("Tab")
    tab_to(page, f"#f-{n}consenter")
    page.keyboard.type("local")  # a focused select picks the option typed
    assert page.locator(f"#f-{n}consenter").input_value() == "local_authority"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == f"f-{n}form_version"
    page.keyboard.type("v3")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == f"f-{n}consented_on"
    page.keyboard.type(on)
    page.keyboard.press("Tab")  # the date picker beside it is not a tab stop
    assert page.evaluate("document.activeElement.textContent") == f"Record consent for {child}"
    with page.expect_navigation():
        page.keyboard.press("Enter")


def randomise_with_keyboard(page: Page, family: str) -> None:
    """Tick the confirmation with Space and press Enter on the button: no clicks."""
    page.keyboard.press("Tab")
    tab_to(page, "#f-confirm")
    page.keyboard.press("Space")
    assert page.locator("#f-confirm").is_checked()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == f"Randomise family {family}"
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_closed_report_journey(
    page: Page, server: str, db: Database, actors: Actors, backend: str
) -> None:
    """A DMC member downloads the closed report; a blinded statistician has no link to it,
    and its URL is refused."""
    small_trial(db, actors, n_families=6)
    frozen = freezes.create_freeze(db, actors["datamanager"], label="DMC 1").id
    j = Journey(page, server, f"{backend}-reports")
    j.log_in("dmc_chair")
    j.visit("dmc-home")
    page.get_by_role("link", name="Reports").first.click()
    page.wait_for_url(re.compile(r"/reports$"))
    j.visit("dmc-reports")
    closed = page.locator("section").filter(
        has=page.get_by_role("heading", name="The closed report")
    )
    closed.get_by_label("Data freeze").select_option(str(frozen))
    closed.get_by_label("Format").select_option("html")
    # the report is built on request (statistics and figures): slower than a page
    with page.expect_download(timeout=REPORT_TIMEOUT_MS) as info:
        closed.get_by_role("button", name="Download the closed report").click(
            timeout=REPORT_TIMEOUT_MS
        )
    download = info.value
    assert download.suggested_filename == f"noim-closed-interim-report-freeze{frozen}.html"
    report = Path(download.path()).read_text(encoding="utf-8")
    assert "Services as usual" in report and "New Orleans Intervention Model" in report
    j.log_out()

    j.log_in("statistician")
    page.get_by_role("link", name="Reports").first.click()
    page.wait_for_url(re.compile(r"/reports$"))
    j.visit("statistician-reports")
    assert page.get_by_role("button", name="Download the open report").count() == 1
    assert page.get_by_role("button", name=re.compile("closed")).count() == 0
    assert page.locator('a[href*="/reports/closed"], form[action*="/reports/closed"]').count() == 0
    refused = page.goto(f"{server}/reports/closed?freeze={frozen}&format=html")
    assert refused is not None and refused.status == 403
    text = page.get_by_role("main").inner_text()
    assert "Services as usual" not in text and "New Orleans" not in text
    j.visit("statistician-closed-refused")


def test_administrator_sees_the_users(page: Page, server: str, backend: str) -> None:
    """The administrator's users page, one click from home (checked and photographed)."""
    j = Journey(page, server, f"{backend}-admin")
    j.log_in("admin")
    j.visit("admin-home")
    page.get_by_role("link", name="Users").first.click()
    page.wait_for_url(re.compile(r"/admin/users$"))
    users = page.get_by_role("table").first.inner_text()
    assert "coord_gla" in users and "dmc_chair" in users
    j.visit("admin-users")
    page.get_by_role("link", name="coord_gla", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/users/coord_gla$"))
    j.visit("admin-user")
