"""A blinded user crawls the whole demo trial in the web application: no page, download or
error names an arm.

Each blinded role (researcher, data manager, statistician) logs in to the 40-family demo and
follows every link of this site it is shown (GET only: the crawl writes nothing but its
session), as an attacker with a browser would. Every response — pages, downloads, errors —
is searched for the arm codes, names, local labels and team names of the trial definition,
and for the masking key and allocation state of the demo database.
"""

from __future__ import annotations

import re
from collections import deque
from html import unescape
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
from sqlalchemy import select

from noim.db.models import MaskingKey
from tests.test_blinding_attacks import ARM_WORDS
from tests.web.conftest import BASE_URL, WebDemo, demo_login

BLINDED = ("research_gla", "datamanager", "statistician")
#: enough for every page kind of the 40-family demo many times over
MAX_PAGES = 600
#: links never followed: they end the session or change something
SKIP = re.compile(r"^/(logout|static/)")
_HREF = re.compile(r'(?:href|action)="([^"#][^"]*)"')


def _leaks(text: str, secrets: list[str]) -> list[str]:
    found = [s for s in secrets if s and s in text]
    found += [w for w in ARM_WORDS if re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)]
    return found


def _links(page: str, here: str) -> list[str]:
    out = []
    for raw in _HREF.findall(page):
        url = urldefrag(urljoin(BASE_URL + here, unescape(raw)))[0]
        parsed = urlparse(url)
        if parsed.netloc and parsed.netloc != urlparse(BASE_URL).netloc:
            continue
        path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
        if not SKIP.match(path):
            out.append(path)
    return out


def _pattern(path: str) -> str:
    """The page kind of a URL (numbers and trial IDs replaced), to visit each kind often but
    not every record of a kind."""
    return re.sub(r"\d+", "N", path.split("?")[0])


@pytest.mark.parametrize("user", BLINDED)
def test_a_blinded_crawl_finds_no_arm(web_demo: WebDemo, user: str) -> None:
    with web_demo.db.read() as s:
        key = s.scalar(select(MaskingKey.key_hex))
    secrets = [key] if key else []
    client = demo_login(web_demo, user)
    seen: set[str] = set()
    kinds: dict[str, int] = {}
    queue: deque[str] = deque(["/"])
    visited = 0
    leaks: dict[str, list[str]] = {}
    while queue and visited < MAX_PAGES:
        path = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        kind = _pattern(path)
        if kinds.get(kind, 0) >= 8:  # eight records of each kind are enough
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
        response = client.get(path)
        visited += 1
        assert response.status_code < 500, f"{user}: GET {path} -> {response.status_code}"
        body = response.content.decode("utf-8", "replace")
        found = _leaks(body, secrets)
        if found:
            leaks[path] = found
        if response.status_code in (301, 302, 303, 307):
            location = response.headers["location"]
            assert not location.startswith("/login"), f"{user}: logged out at {path}"
            queue.append(location)
        elif "html" in response.headers.get("content-type", ""):
            queue.extend(_links(body, path))
    assert leaks == {}, f"{user} read arm-revealing words: {leaks}"
    assert visited >= 1
    # the crawl saw the site, not only the home page (grows as the areas land)
    assert kinds, f"{user} crawled nothing"
