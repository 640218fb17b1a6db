"""Benchmark: the web application under load, 1 to 50 coordinators at once (issue 12, section 6).

Builds the demonstration trial (``noim demo --families N``, 10,000 by default) on SQLite and on
PostgreSQL, serves a copy of it with ``noim serve`` (a subprocess on a free port of 127.0.0.1,
nothing else is ever contacted) and simulates 1, 10 and 50 coordinators at once (``--users``),
each a thread with its own keep-alive HTTP client and its own login (coord_gla and coord_cro in
turn, the demo password).  Each coordinator repeats the journey of issue 12 until the level's
time (``--duration`` seconds) or request cap (``--max-requests``) runs out:

  home, screening log, register a family with two children (the form's CSRF token and fields
  read from the page), eligibility, consent, randomise, a placement and a move, an SDQ entered
  item by item (and its scores), then record views: the new family, its child, a demo family
  and child of the site, a history page and the queries list.

By default each user sends its next request as soon as the last is answered (the server
saturated: the worst case); ``--think S`` makes each user pause S seconds on average
(exponentially distributed) before each request, as a person reads and types.

A page answering 404 is reported as *missing* (a page not built yet) and the steps that need it
are skipped; a form answered 422 is reported as *rejected* (the harness's values were refused).
For each backend and level it prints p50, p95 and p99 latency per page (GET and POST apart),
requests per second, the server's CPU seconds, and whether the target is met: p95 under 150 ms
at 10 users, for every page.  The target is measured at a person's pace with one server process
per core (``--think 1 --workers 2``, docs/operations.md); back to back is the stress test.  The
last line is one JSON object with all the figures.

Without ``--reuse`` the demos are built in a temporary folder (SQLite) or a scratch database
(PostgreSQL) and removed at the end.  With ``--reuse DIR`` they are kept, SQLite in
``DIR/demo-N.db`` and PostgreSQL in database ``noim_bench_web_N``, built once and reused.  Each
run serves a copy (SQLite backup / ``CREATE DATABASE ... TEMPLATE``), so the kept demo is never
written to; the copy is brought to the current schema (``noim db upgrade``) first.

Run: ``.venv/bin/python benchmarks/web.py [--families 10000] [--users 1,10,50] [--duration 20]
[--backends sqlite,postgresql] [--postgresql URL] [--reuse DIR] [--think S] [--workers N]``;
quick runs: ``--families 400``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx2 as httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from noim.services.demo import DEMO_PASSWORD

NOIM = [sys.executable, "-c", "from noim.cli import main; main()"]
PG_DEFAULT_URL = "postgresql+psycopg://noim_test:noim_test@127.0.0.1:5432/noim_test"
TARGET_MS = 150.0
TARGET_USERS = 10
COORDINATORS = (("coord_gla", "GLA"), ("coord_cro", "CRO"))


# ---------------------------------------------------------------- databases


def _pg_admin(pg_url: str) -> Any:
    return create_engine(pg_url, isolation_level="AUTOCOMMIT")


def _pg_exists(pg_url: str, name: str) -> bool:
    admin = _pg_admin(pg_url)
    try:
        with admin.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            return found.scalar() is not None
    finally:
        admin.dispose()


def _pg_execute(pg_url: str, sql: str) -> None:
    admin = _pg_admin(pg_url)
    try:
        with admin.connect() as conn:
            conn.execute(text(sql))
    finally:
        admin.dispose()


def _build_demo(url: str, n: int) -> None:
    print(f"building the demonstration trial of {n:,} families in {url} ...", file=sys.stderr)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [*NOIM, "demo", "--families", str(n), "--database", url, "--json", "--out", tmp],
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"noim demo --families {n} failed:\n{done.stderr[-3000:]}")
    print(f"  built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def demo_database(backend: str, n: int, keep: Path, pg_url: str) -> str:
    """The URL of the (kept) demonstration trial of ``n`` families, built when missing."""
    if backend == "sqlite":
        path = keep / f"demo-{n}.db"
        url = f"sqlite:///{path}"
        if not path.exists():
            _build_demo(url, n)
        return url
    name = f"noim_bench_web_{n}"
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    if not _pg_exists(pg_url, name):
        _pg_execute(pg_url, f'CREATE DATABASE "{name}"')
        try:
            _build_demo(url, n)
        except BaseException:
            _pg_execute(pg_url, f'DROP DATABASE IF EXISTS "{name}"')
            raise
    return url


@contextlib.contextmanager
def served_copy(source: str, work: Path, pg_url: str) -> Iterator[str]:
    """A copy of the demo at ``source`` (the benchmark writes to it), upgraded; removed after."""
    if make_url(source).get_backend_name() == "sqlite":
        target = work / f"served-{os.getpid()}.db"
        with (
            contextlib.closing(sqlite3.connect(make_url(source).database or "")) as src,
            contextlib.closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)
        url = f"sqlite:///{target}"
        cleanup = lambda: [p.unlink(missing_ok=True) for p in work.glob(f"{target.name}*")]  # noqa: E731
    else:
        name = f"noim_bench_web_run_{os.getpid()}"
        _pg_execute(pg_url, f'DROP DATABASE IF EXISTS "{name}"')
        _pg_execute(pg_url, f'CREATE DATABASE "{name}" TEMPLATE "{make_url(source).database}"')
        url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
        cleanup = lambda: _pg_execute(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # noqa: E731
    try:
        done = subprocess.run(
            [*NOIM, "--database", url, "--user", "admin", "db", "upgrade"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"noim db upgrade failed on the copy:\n{done.stderr}")
        yield url
    finally:
        cleanup()


def demo_records(url: str) -> dict[str, list[tuple[str, list[str]]]]:
    """Per site code, the demo's families (trial IDs) with their children's trial IDs."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT s.code, f.trial_id, c.trial_id FROM families f "
                    "JOIN sites s ON s.id = f.site_id JOIN children c ON c.family_id = f.id "
                    "WHERE f.voided_at IS NULL AND c.voided_at IS NULL ORDER BY f.id, c.id"
                )
            ).all()
    finally:
        engine.dispose()
    families: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for site, family, child in rows:
        families[site].setdefault(family, []).append(child)
    return {site: list(fams.items()) for site, fams in families.items()}


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    """The ids of the processes ``pid`` started (uvicorn's workers)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Server:
    """``noim serve`` on a free loopback port, as a subprocess."""

    def __init__(self, url: str, log: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [
                *NOIM,
                "--database",
                url,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"noim serve exited ({self.proc.returncode}); see {self.log.name}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base}/login", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise SystemExit(f"noim serve did not answer within {timeout:.0f} s")

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the server and its worker processes (Linux /proc)."""
        total = 0.0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return float("nan")
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------- pages and forms


@dataclass
class Form:
    action: str
    method: str
    #: (name, kind, value, checked); kind: text, hidden, date, select, radio, checkbox, textarea
    fields: list[tuple[str, str, str, bool]] = field(default_factory=list)
    options: dict[str, list[str]] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
            return
        if not self.forms:
            return
        form = self.forms[-1]
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if "date-input" in a.get("class", "") or a.get("placeholder") == "dd/mm/yyyy":
                kind = "date"
            form.fields.append((name, kind, a.get("value", ""), "checked" in a))
            if kind == "radio":
                form.options.setdefault(name, []).append(a.get("value", ""))
        elif tag == "select" and name:
            self._select = name
            form.fields.append((name, "select", "", False))
            form.options[name] = []
        elif tag == "option" and self._select is not None:
            form.options[self._select].append(a.get("value", ""))
            if "selected" in a:
                i = next(i for i, f in enumerate(form.fields) if f[0] == self._select)
                form.fields[i] = (self._select, "select", a.get("value", ""), True)
        elif tag == "textarea" and name:
            self._textarea = name
            form.fields.append((name, "textarea", "", False))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def parse_page(html: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(html)
    return parser


def post_forms(html: str) -> list[Form]:
    """The page's POST forms other than the header's log-out button."""
    return [f for f in parse_page(html).forms if f.method == "post" and f.action != "/logout"]


def fill(form: Form, values: dict[str, str], rng: random.Random) -> dict[str, str]:
    """The form's fields as a browser would send them, filled from ``values`` (by name or by a
    pattern ``re:...`` over the name), else kept, else a plausible choice (yes, the first)."""

    def given(name: str) -> str | None:
        if name in values:
            return values[name]
        for key, value in values.items():
            if key.startswith("re:") and re.search(key[3:], name):
                return value
        return None

    data: dict[str, str] = {}
    for name, kind, value, _checked in form.fields:
        if kind in ("submit", "button", "file", "password") and name not in values:
            continue
        chosen = given(name)
        if kind == "radio":
            if name in data:
                continue
            options = [o for o in form.options.get(name, []) if o]
            if chosen is not None:
                data[name] = chosen
            elif {"yes", "true"} & set(options):
                data[name] = "yes" if "yes" in options else "true"
            elif options:
                data[name] = rng.choice(options)
        elif kind == "checkbox":
            data[name] = value or "on" if chosen is None else chosen
        elif kind == "select":
            options = [o for o in form.options.get(name, []) if o]
            data[name] = chosen if chosen is not None else value or (options[0] if options else "")
        elif kind == "hidden":
            data[name] = value if chosen is None else chosen
        else:
            data[name] = (
                chosen
                if chosen is not None
                else value or ("benchmark" if kind == "textarea" else "")
            )
    return data


# ---------------------------------------------------------------- a simulated coordinator


class LevelOver(Exception):
    """The level's time or request cap ran out."""


class Missing(Exception):
    """A page the journey needs is not there (404) or refused its form."""


@dataclass
class Recorder:
    """Every timed request of one level: (page, method) -> latencies and statuses."""

    deadline: float
    cap: int
    latencies: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[tuple[str, str], Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    #: the first refusal of each page (what its error summary said), to show why
    why: dict[tuple[str, str], str] = field(default_factory=dict)
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self) -> None:
        with self.lock:
            if self.count >= self.cap or time.monotonic() >= self.deadline:
                raise LevelOver
            self.count += 1

    def add(self, page: str, method: str, status: int, seconds: float) -> None:
        outcome = {404: "missing", 422: "rejected", 403: "refused"}.get(status)
        if outcome is None:
            outcome = "error" if status >= 500 or status == 0 else "ok"
        with self.lock:
            self.statuses[(page, method)][outcome] += 1
            if outcome != "missing":
                self.latencies[(page, method)].append(seconds * 1000)


def _ddmmyyyy(d: date) -> str:
    return d.strftime("%d/%m/%Y")


class Coordinator:
    """One simulated coordinator: its own client (keep-alive), session and site."""

    def __init__(
        self, base: str, name: str, site: str, rng: random.Random, think: float = 0.0
    ) -> None:
        self.client = httpx.Client(base_url=base, follow_redirects=False, timeout=60)
        self.name, self.site, self.rng, self.think = name, site, rng, think
        self.rec: Recorder | None = None

    def login(self) -> float:
        page = self.client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        t0 = time.perf_counter()
        r = self.client.post(
            "/login",
            data={"csrf_token": token.group(1) if token else "", "name": self.name}
            | {"password": DEMO_PASSWORD, "next": "/"},
        )
        seconds = time.perf_counter() - t0
        if r.status_code != 303 or r.headers.get("location") in ("/password", "/second-factor"):
            raise SystemExit(f"{self.name} could not log in ({r.status_code}): {r.text[:300]}")
        return seconds

    def close(self) -> None:
        self.client.close()

    # -- timed requests
    def _timed(
        self, method: str, url: str, page: str, data: dict[str, str] | None = None
    ) -> httpx.Response:
        assert self.rec is not None
        if self.think:  # a person reading the page before the next click (mean ``think`` s)
            pause = self.rng.expovariate(1 / self.think)
            time.sleep(min(pause, max(0.0, self.rec.deadline - time.monotonic())))
        self.rec.claim()
        t0 = time.perf_counter()
        try:
            r = self.client.request(method, url, data=data)
            r.read()
        except httpx.TransportError as exc:  # a timeout or a dropped connection: an error
            self.rec.add(page, method, 0, time.perf_counter() - t0)
            raise Missing(page) from exc
        self.rec.add(page, method, r.status_code, time.perf_counter() - t0)
        if r.status_code >= 400 and r.status_code != 404 and (page, method) not in self.rec.why:
            self.rec.why[(page, method)] = f"{r.status_code}: {_said(r.text)}"
        return r

    def get(self, url: str, page: str) -> str:
        r = self._timed("GET", url, page)
        if r.status_code == 404:
            raise Missing(page)
        return r.text

    def submit(self, url: str, page: str, values: dict[str, str], pick: int = 0) -> str | None:
        """GET the form at ``url``, POST it filled; follow the redirect (timed) and return the
        new page's URL; None when refused."""
        html = self.get(url, page)
        forms = post_forms(html)
        if len(forms) <= pick:
            raise Missing(f"{page} (no form)")
        form = forms[pick]
        action = form.action or url
        r = self._timed("POST", action, page, fill(form, values, self.rng))
        if r.status_code == 404:
            raise Missing(page)
        if r.status_code != 303:
            return None
        location = r.headers["location"]
        self.get(location, _pattern(location))
        return location

    # -- the journey
    def journey(self, demo: list[tuple[str, list[str]]]) -> None:
        today = datetime.now(UTC).date()
        entered = today - timedelta(weeks=6)
        self._step(self.get, "/", "/")
        self._step(self.get, "/screening", "/screening")
        family = self._step(self._register, today, entered)
        children: list[str] = []
        if family:
            children = self._step(self._children, family, today, entered) or []
            for step in ("eligibility", "consent", "randomise"):
                self._step(self._family_form, family, step, today)
        if children:
            child = children[0]
            self._step(self._placements, child, entered)
            self._step(self._sdq, child)
            self._step(self.get, f"/families/{family}", "/families/{family}")
            self._step(self.get, f"/children/{child}", "/children/{child}")
        demo_family, demo_children = self.rng.choice(demo)
        self._step(self.get, f"/families/{demo_family}", "/families/{family}")
        self._step(self._record_views, self.rng.choice(demo_children))
        self._step(self.get, "/queries", "/queries")

    @staticmethod
    def _step(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Missing:
            return None

    def _register(self, today: date, entered: date) -> str | None:
        """Register a family with two children (rows 1 and 2 of the form; the others empty)."""
        values = {
            "site": self.site,
            "in_care_proceedings": "yes",
            "c1_date_of_birth": _ddmmyyyy(today - timedelta(days=30 * 30)),
            "c1_entered_care_on": _ddmmyyyy(entered),
            "c2_date_of_birth": _ddmmyyyy(today - timedelta(days=30 * 42)),
            "c2_entered_care_on": _ddmmyyyy(entered),
            r"re:^c([3-9]|\d\d)_": "",
            "re:(birth|dob)": _ddmmyyyy(today - timedelta(days=30 * 30)),
            "re:(entered|entry_to_care|care_on)": _ddmmyyyy(entered),
        }
        location = self.submit("/families/new", "/families/new", values)
        found = re.match(r"/families/([^/?#]+)", location or "")
        return found.group(1) if found and found.group(1) != "new" else None

    def _children(self, family: str, today: date, entered: date) -> list[str]:
        """The family's children, adding one more (its sibling) when the register form took one."""
        html = self.get(f"/families/{family}", "/families/{family}")
        kids = _child_links(html, family)
        adders = [h for h in parse_page(html).links if re.search(r"/children/new|/child/new", h)]
        if len(kids) < 2 and adders:
            values = {
                "re:(birth|dob)": _ddmmyyyy(today - timedelta(days=30 * 42)),
                "re:(entered|entry|care_on)": _ddmmyyyy(entered),
            }
            self.submit(adders[0], _pattern(adders[0]), values)
            kids = _child_links(self.get(f"/families/{family}", "/families/{family}"), family)
        return kids

    def _family_form(self, family: str, step: str, today: date) -> None:
        url = f"/families/{family}/{step}"
        values = {
            "re:(^|_)on$|date": _ddmmyyyy(today),
            "re:eligib": "yes",
            "re:confirm": "yes",
            "re:form_version": "1.0",
            "re:reason": "",
        }
        html = self.get(url, f"/families/{{family}}/{step}")
        for pick, form in enumerate(post_forms(html)):
            r = self._timed(
                "POST",
                form.action or url,
                f"/families/{{family}}/{step}",
                fill(form, values, self.rng),
            )
            if r.status_code == 303 and pick == len(post_forms(html)) - 1:
                self.get(r.headers["location"], _pattern(r.headers["location"]))

    def _placements(self, child: str, entered: date) -> None:
        values = {"start_date": _ddmmyyyy(entered), "carer_id": ""}
        location = self.submit(
            f"/children/{child}/placements/new", "/children/{child}/placements/new", values
        )
        if location is None:
            return
        html = self.get(f"/children/{child}", "/children/{child}")
        moves = [h for h in parse_page(html).links if re.search(r"/placements/\d+/move$", h)]
        if moves:
            on = _ddmmyyyy(entered + timedelta(days=self.rng.randint(7, 20)))
            self.submit(moves[0], "/children/{child}/placements/{id}/move", {"on": on})

    def _sdq(self, child: str) -> None:
        url = f"/children/{child}/assessments/new?instrument=sdq&visit=baseline"
        html = self.get(url, "/children/{child}/assessments/new")
        forms = post_forms(html)
        if not forms:
            raise Missing("SDQ form")
        values = {
            name: self.rng.choice([o for o in opts if o])
            for name, opts in forms[0].options.items()
            if forms[0].fields and any(f[0] == name and f[1] == "radio" for f in forms[0].fields)
        }
        values["re:missing"] = ""  # every item answered: no missing-data code
        r = self._timed(
            "POST",
            forms[0].action or url,
            "/children/{child}/assessments/new",
            fill(forms[0], values, self.rng),
        )
        if r.status_code == 303:
            self.get(r.headers["location"], _pattern(r.headers["location"]))

    def _record_views(self, child: str) -> None:
        html = self.get(f"/children/{child}", "/children/{child}")
        history = [h for h in parse_page(html).links if h.startswith("/history/")]
        if history:
            self.get(self.rng.choice(history), "/history/{table}/{id}")


def _said(html: str) -> str:
    """The error summary (or the main text) of a refused page, as one line."""
    found = re.search(r'<div class="error-summary".*?</div>', html, re.S) or re.search(
        r"<main.*?</main>", html, re.S
    )
    words = re.sub(r"<[^>]+>", " ", found.group(0) if found else html)
    return re.sub(r"\s+", " ", words).strip()[:300]


def _child_links(html: str, family: str) -> list[str]:
    stem = family.rsplit("-", 1)[0]  # G-0001-Z: the children are G-0001-01-O, ...
    found = re.findall(rf'href="/children/({re.escape(stem)}-[^"/?#]+)"', html)
    return list(dict.fromkeys(found))


_PATTERNS = [
    (re.compile(r"^/families/[^/]+$"), "/families/{family}"),
    (re.compile(r"^/families/[^/]+/([a-z-]+)$"), "/families/{family}/\\1"),
    (re.compile(r"^/children/[^/]+$"), "/children/{child}"),
    (re.compile(r"^/children/[^/]+/assessments/\d+$"), "/children/{child}/assessments/{id}"),
    (
        re.compile(r"^/children/[^/]+/placements/\d+/([a-z]+)$"),
        "/children/{child}/placements/{id}/\\1",
    ),
    (re.compile(r"^/children/[^/]+/([a-z-]+)/new$"), "/children/{child}/\\1/new"),
    (re.compile(r"^/history/([^/]+)/[^/]+$"), "/history/{table}/{id}"),
]


def _pattern(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0]
    for regex, label in _PATTERNS:
        if regex.match(path):
            return regex.sub(label, path)
    return path


# ---------------------------------------------------------------- a level, a backend


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def run_level(
    coords: list[Coordinator],
    demo: dict[str, list[tuple[str, list[str]]]],
    duration: float,
    cap: int,
    server: Server,
) -> dict[str, Any]:
    rec = Recorder(deadline=time.monotonic() + duration, cap=cap)
    failures: list[str] = []

    def work(coord: Coordinator) -> None:
        coord.rec = rec
        try:
            while True:
                coord.journey(demo[coord.site])
        except LevelOver:
            pass
        except Exception as exc:  # a crash of the harness is reported, never hidden
            failures.append(f"{coord.name}: {type(exc).__name__}: {exc}")

    cpu0, own0, t0 = server.cpu_seconds(), time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in coords]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 120)
    seconds = time.perf_counter() - t0
    everything = [ms for values in rec.latencies.values() for ms in values]
    pages = []
    for key in sorted(rec.statuses):
        page, method = key
        values = rec.latencies.get(key, [])
        row: dict[str, Any] = {"page": page, "method": method, "n": len(values)}
        if values:
            row |= {f"p{p}": round(percentile(values, p), 1) for p in (50, 95, 99)}
        row["statuses"] = dict(rec.statuses[key])
        if key in rec.why:
            row["first_refusal"] = rec.why[key]
        pages.append(row)
    statuses: Counter[str] = Counter()
    for counter in rec.statuses.values():
        statuses.update(counter)
    level: dict[str, Any] = {
        "users": len(coords),
        "seconds": round(seconds, 1),
        "requests": rec.count,
        "rps": round(len(everything) / seconds, 1) if seconds else 0.0,
        "server_cpu_s": round(server.cpu_seconds() - cpu0, 1),
        "client_cpu_s": round(time.process_time() - own0, 1),
        "load_at_end": round(os.getloadavg()[0], 2),
        "statuses": dict(statuses),
        "pages": pages,
    }
    if everything:
        level |= {f"p{p}": round(percentile(everything, p), 1) for p in (50, 95, 99)}
    level["slow_pages"] = [
        f"{r['method']} {r['page']}" for r in pages if r.get("p95", 0.0) >= TARGET_MS
    ]
    if failures:
        level["harness_failures"] = failures[:10]
    return level


def run_backend(
    backend: str, source: str, work: Path, pg_url: str, args: argparse.Namespace
) -> dict[str, Any]:
    levels = sorted({int(u) for u in args.users.split(",")})
    with served_copy(source, work, pg_url) as url:
        demo = demo_records(url)
        server = Server(url, work / f"serve-{backend}.log", args.workers)
        coords: list[Coordinator] = []
        try:
            server.wait()
            rng = random.Random(args.seed)
            for i in range(max(levels)):
                name, site = COORDINATORS[i % len(COORDINATORS)]
                coords.append(
                    Coordinator(server.base, name, site, random.Random(rng.random()), args.think)
                )
            logins = [c.login() * 1000 for c in coords]
            result: dict[str, Any] = {
                "backend": backend,
                "workers": args.workers,
                "think_s": args.think,
                "login_ms": {f"p{p}": round(percentile(logins, p), 1) for p in (50, 95)},
                "levels": [],
            }
            for users in levels:
                print(f"  {backend}: {users} users for {args.duration} s ...", file=sys.stderr)
                level = run_level(coords[:users], demo, args.duration, args.max_requests, server)
                result["levels"].append(level)
        finally:
            for c in coords:
                c.close()
            server.stop()
    return result


# ---------------------------------------------------------------- output


def print_backend(r: dict[str, Any], families: int) -> None:
    print(
        f"\n== {r['backend']}, {families:,} families, {r['workers']} server process(es) "
        f"(login p50 {r['login_ms']['p50']} ms)"
    )
    if r.get("think_s"):
        print(f"   users pause {r['think_s']} s on average before each request")
    for level in r["levels"]:
        print(
            f"\n{level['users']} users: {level['requests']} requests in {level['seconds']} s, "
            f"{level['rps']} req/s, p50 {level.get('p50')} p95 {level.get('p95')} "
            f"p99 {level.get('p99')} ms, CPU s server {level['server_cpu_s']} "
            f"client {level['client_cpu_s']}, "
            f"load {level['load_at_end']}"
        )
        print(f"  {'method':<5} {'page':<44} {'n':>6} {'p50':>7} {'p95':>7} {'p99':>7}  statuses")
        for row in level["pages"]:
            statuses = " ".join(f"{k} {v}" for k, v in sorted(row["statuses"].items()))
            print(
                f"  {row['method']:<5} {row['page']:<44} {row['n']:>6} {row.get('p50', ''):>7} "
                f"{row.get('p95', ''):>7} {row.get('p99', ''):>7}  {statuses}"
            )
        for row in level["pages"]:
            if "first_refusal" in row:
                print(f"  refused {row['method']} {row['page']}: {row['first_refusal']}")
        for failure in level.get("harness_failures", []):
            print(f"  harness failure: {failure}")


def target(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"p95_ms_below": TARGET_MS, "users": TARGET_USERS}
    for r in results:
        for level in r["levels"]:
            if level["users"] == TARGET_USERS:
                out[r["backend"]] = {
                    "met": not level["slow_pages"] and "p95" in level,
                    "overall_p95_ms": level.get("p95"),
                    "pages_at_or_above": level["slow_pages"],
                }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--families", type=int, default=10_000, help="size of the demo trial")
    parser.add_argument("--users", default="1,10,50", help="concurrent coordinators per level")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per level")
    parser.add_argument(
        "--max-requests", type=int, default=20_000, help="request cap per level (all users)"
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--postgresql",
        metavar="URL",
        default=os.environ.get("NOIM_TEST_PG_URL", PG_DEFAULT_URL),
        help="a PostgreSQL role allowed to create databases (default: the test cluster's)",
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        metavar="DIR",
        help="keep the demos (SQLite files here) and reuse them",
    )
    parser.add_argument("--seed", type=int, default=12, help="the simulated users' choices")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds a user pauses before each request (exponential; default 0: "
        "back to back, the server saturated)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (noim serve --workers; default 1)",
    )
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    load = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory(prefix="noim-web-bench-") as tmp:
        work = Path(tmp)
        keep = args.reuse or work
        keep.mkdir(parents=True, exist_ok=True)
        for backend in backends:
            source = demo_database(backend, args.families, keep, args.postgresql)
            try:
                results.append(run_backend(backend, source, work, args.postgresql, args))
            finally:
                if args.reuse is None and backend == "postgresql":
                    name = make_url(source).database
                    _pg_execute(args.postgresql, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print_backend(results[-1], args.families)
        if args.reuse is None:
            shutil.rmtree(work / "reports", ignore_errors=True)
    goal = target(results)
    print()
    for backend, verdict in goal.items():
        if isinstance(verdict, dict):
            print(
                f"target p95 < {TARGET_MS:.0f} ms at {TARGET_USERS} users "
                f"({'back to back' if not args.think else f'pausing {args.think:g} s on average'},"
                f" {args.workers} server process(es)), {backend}: "
                f"{'met' if verdict['met'] else 'NOT met'} (overall p95 "
                f"{verdict['overall_p95_ms']} ms; pages at or above: "
                f"{', '.join(verdict['pages_at_or_above']) or 'none'})"
            )
    summary = {
        "benchmark": "noim web",
        "families": args.families,
        "duration_s": args.duration,
        "think_s": args.think,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "load_at_start": round(load, 2),
        "target": goal,
        "backends": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
