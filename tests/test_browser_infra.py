"""The browser-test machinery itself (tests/browser.py): a tiny Starlette app served by
``live_server``, driven in Debian's Chromium through Playwright, read back, used with the
keyboard alone, and photographed."""

from __future__ import annotations

import os
import socket
import stat
import struct
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from urllib.request import urlopen

import pytest
from jinja2 import DictLoader, Environment, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

from tests.browser import (
    browser,  # noqa: F401  (fixture)
    chromium_path,
    launch_args,
    live_server,
    page,  # noqa: F401  (fixture)
    require_chromium,
    shot,
    shots_dir,
)

TEMPLATES = {
    "base.html": """<!doctype html>
<html lang="en-GB">
<head><meta charset="utf-8"><title>{% block title %}{% endblock %} · noim check</title>
<style>body { font-family: sans-serif; margin: 2rem; } label { display: block; margin-top: 1rem; }</style>
</head>
<body><main>{% block main %}{% endblock %}</main></body>
</html>""",
    "form.html": """{% extends "base.html" %}{% block title %}Screening{% endblock %}
{% block main %}
<h1>Screening check</h1>
<p id="started">Served by {{ server }}</p>
<form method="post" action="/submit">
  <label for="family">Family name</label>
  <input id="family" name="family" autocomplete="off" required>
  <label><input type="checkbox" name="consented" value="yes"> Consent recorded</label>
  <button type="submit">Save</button>
</form>
{% endblock %}""",
    "saved.html": """{% extends "base.html" %}{% block title %}Saved{% endblock %}
{% block main %}
<h1>Saved</h1>
<p id="family">Family: {{ family }}</p>
<p id="consented">Consent: {{ "yes" if consented else "no" }}</p>
<p id="clock">Browser clock: <span></span></p>
<script>
document.querySelector("#clock span").textContent =
  Intl.DateTimeFormat().resolvedOptions().timeZone + " " + navigator.language;
</script>
{% endblock %}""",
}


def make_app() -> Starlette:
    """A two-page app in the shape noim/web will have: Jinja2 templates with autoescape,
    a GET form and a POST that answers with what it received."""
    env = Environment(loader=DictLoader(TEMPLATES), autoescape=select_autoescape(default=True))
    started: list[str] = []

    async def form(request: Request) -> HTMLResponse:
        return HTMLResponse(env.get_template("form.html").render(server=", ".join(started)))

    async def submit(request: Request) -> HTMLResponse:
        # parsed by hand: Starlette's request.form() needs python-multipart, not a dependency yet
        fields = parse_qs((await request.body()).decode("utf-8"), keep_blank_values=True)
        family = fields.get("family", [""])[0]
        consented = fields.get("consented", [""])[0] == "yes"
        html = env.get_template("saved.html").render(family=family, consented=consented)
        return HTMLResponse(html)

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started.append("uvicorn")
        yield

    return Starlette(
        routes=[
            Route("/", form),
            Route("/submit", submit, methods=["POST"]),
            Route("/health", health),
        ],
        lifespan=lifespan,
    )


def _refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


# -- live_server, without a browser ------------------------------------------------------------


def test_live_server_serves_on_a_free_loopback_port_and_stops() -> None:
    with live_server(make_app()) as url:
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        with urlopen(f"{url}/health", timeout=5) as response:
            assert response.status == 200
            assert response.read() == b"ok"
    assert _refuses(port), f"port {port} still accepts connections after live_server exited"


def test_two_live_servers_run_side_by_side() -> None:
    with live_server(make_app()) as first, live_server(make_app()) as second:
        assert first != second
        for url in (first, second):
            with urlopen(f"{url}/health", timeout=5) as response:
                assert response.read() == b"ok"


def test_live_server_reports_a_failed_start_up() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "no database"})
            return

    with pytest.raises(RuntimeError, match="stopped during start-up"), live_server(broken):
        pass


# -- finding Chromium; skip or fail --------------------------------------------------------------


def test_noim_chromium_names_the_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "my-chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("NOIM_CHROMIUM", str(fake))
    assert chromium_path() == str(fake)
    fake.chmod(stat.S_IRUSR | stat.S_IWUSR)  # no x bit at all: not even root may run it
    assert chromium_path() is None


def test_missing_chromium_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOIM_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"NOIM_CHROMIUM=/nonexistent/chromium"):
        require_chromium()


def test_missing_chromium_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOIM_CHROMIUM", "/nonexistent/chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"^CI=true and NOIM_CHROMIUM="):
        require_chromium()


SETUP_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "browser-test-setup.sh"


def test_setup_script_never_fails_and_says_why(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-chromium"
    env = {**os.environ, "NOIM_CHROMIUM": str(missing)}
    done = subprocess.run(
        ["bash", str(SETUP_SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"browser-test-setup: NOIM_CHROMIUM={missing} is not an executable file; "
        "browser tests will skip (fail under CI=true)"
    )


def test_no_sandbox_only_as_root() -> None:
    assert ("--no-sandbox" in launch_args()) == (os.geteuid() == 0)


# -- in Chromium ---------------------------------------------------------------------------------


@pytest.mark.browser
def test_browser_is_the_debian_chromium(browser: Browser) -> None:  # noqa: F811
    path = require_chromium()
    reported = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    # `chromium --version` prints e.g. "Chromium 150.0.7871.100 built on Debian GNU/Linux 12"
    assert browser.version in reported.stdout, (reported.stdout, browser.version)


@pytest.mark.browser
def test_page_loads_and_text_reads_back(page: Page) -> None:  # noqa: F811
    with live_server(make_app()) as url:
        page.goto(url)
        assert page.title() == "Screening · noim check"
        assert page.get_by_role("heading", level=1).inner_text() == "Screening check"
        # the app's lifespan start-up ran before live_server handed out the URL
        assert page.locator("#started").inner_text() == "Served by uvicorn"
        assert page.viewport_size == {"width": 1366, "height": 768}


@pytest.mark.browser
def test_form_submitted_with_the_keyboard_alone(page: Page) -> None:  # noqa: F811
    with live_server(make_app()) as url:
        page.goto(url)
        name = "O'Neill & <Smith>"

        def focused() -> str:
            return page.evaluate(
                "document.activeElement.getAttribute('name') || document.activeElement.tagName"
            )

        page.keyboard.press("Tab")
        assert focused() == "family"
        page.keyboard.type(name)
        page.keyboard.press("Tab")
        assert focused() == "consented"
        page.keyboard.press("Space")
        page.keyboard.press("Tab")
        assert focused() == "BUTTON"
        with page.expect_navigation():
            page.keyboard.press("Enter")

        assert page.url == f"{url}/submit"
        assert page.get_by_role("heading", level=1).inner_text() == "Saved"
        # the text came back as text: escaped by Jinja2, not markup
        assert page.locator("#family").inner_text() == f"Family: {name}"
        assert page.locator("#family b, #family smith").count() == 0
        assert page.locator("#consented").inner_text() == "Consent: yes"
        # the context's locale and time zone reach the page's scripts
        assert page.locator("#clock span").inner_text() == "Europe/London en-GB"


@pytest.mark.browser
def test_enter_in_the_text_field_submits_without_consent(page: Page) -> None:  # noqa: F811
    with live_server(make_app()) as url:
        page.goto(url)
        page.keyboard.press("Tab")
        page.keyboard.type("Brown")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.locator("#family").inner_text() == "Family: Brown"
        assert page.locator("#consented").inner_text() == "Consent: no"


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every chunk of a PNG, each CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r} chunk"
        chunks.append((kind, body))
        at += 12 + length
    return chunks


@pytest.mark.browser
def test_screenshot_is_a_full_page_png(
    page: Page,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOIM_SCREENSHOTS", str(tmp_path / "shots"))
    assert shots_dir() == tmp_path / "shots"
    assert shots_dir().is_dir()
    with live_server(make_app()) as url:
        page.goto(url)
        # a page taller than the viewport: full_page must capture all of it
        page.evaluate("document.body.style.minHeight = '2000px'")
        path = shot(page, "infra/form page")

    assert path == tmp_path / "shots" / "infra-form-page.png"
    chunks = _png_chunks(path.read_bytes())
    assert chunks[0][0] == b"IHDR"
    assert chunks[-1][0] == b"IEND"
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert width == 1366
    assert height > 2000

    from PIL import Image

    with Image.open(path) as image:
        image.load()
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    # something was drawn: more than a blank page's single colour
    assert colours is None or len(colours) > 1


def test_shots_dir_defaults_to_the_temporary_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    monkeypatch.delenv("NOIM_SCREENSHOTS", raising=False)
    assert shots_dir() == Path(tempfile.gettempdir()) / "noim-screenshots"


@pytest.mark.browser
def test_asyncio_works_again_after_a_browser_module(tmp_path: Path) -> None:
    """Playwright marks its loop as running in the test thread while it is started; the
    module-scoped ``browser`` fixture stops it, so later modules may use asyncio.run()."""
    require_chromium()
    (tmp_path / "test_1_browser.py").write_text(
        "from tests.browser import browser  # noqa: F401\n"
        "def test_uses_browser(browser):\n"
        "    assert browser.version\n"
    )
    (tmp_path / "test_2_asyncio.py").write_text(
        "import asyncio\n"
        "def test_asyncio_run():\n"
        "    assert asyncio.run(asyncio.sleep(0, result=7)) == 7\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_1_browser.py"),
            str(tmp_path / "test_2_asyncio.py"),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
