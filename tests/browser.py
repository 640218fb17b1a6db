"""Browser tests: Debian's Chromium driven by Playwright, and a live ASGI server.

The browser is the Debian package ``chromium`` (``make test`` installs it with
apt-get through ``scripts/browser-test-setup.sh``); Playwright comes from PyPI
and is pointed at that binary with ``executable_path=``.  Nothing here ever
downloads a browser build (``playwright install`` is not used).

Without a Chromium, or without Playwright, the browser fixtures skip with the
reason; under ``CI=true`` that is a failure instead, as for PostgreSQL in
``tests/conftest.py``.  ``NOIM_CHROMIUM`` names another binary; when it is set
it is the only one tried.

Using the fixtures (``browser``, ``page``): this module is a pytest plugin.
Register it once, in the conftest of the folder that needs it, either as

    pytest_plugins = ["tests.browser"]          # top-level tests/conftest.py only

(pytest accepts ``pytest_plugins`` only in the top-level conftest), or by
importing the fixtures into any conftest or test module:

    from tests.browser import browser, page  # noqa: F401  (fixtures)

A test then reads::

    def test_home(page):
        with live_server(make_app()) as url:
            page.goto(url)
            assert page.get_by_role("heading").inner_text() == "noim"
            shot(page, "home")

The Playwright sync API drives its own event loop in the test's thread, so it
must not run inside a running asyncio loop: ``live_server`` keeps the ASGI app
(uvicorn) in a thread of its own.  Conversely, while Playwright runs, ``asyncio.run()``
fails in the test thread: the ``browser`` fixture is per module, so keep browser tests in
modules of their own.  Screenshots go to ``shots_dir()``
(``NOIM_SCREENSHOTS`` or ``<tmp>/noim-screenshots``); a test that fails while
using ``page`` leaves one named ``FAILED-<test>.png`` there.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

#: Debian's binary; `chromium` on PATH is tried first
DEBIAN_CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1366, "height": 768}
LOCALE = "en-GB"
TIMEZONE = "Europe/London"
#: Playwright's own default is 30 s; a local page that takes longer is a failure worth seeing early
DEFAULT_TIMEOUT_MS = 10_000


def chromium_path() -> str | None:
    """The Chromium to drive: ``NOIM_CHROMIUM`` when set (and only it), else
    ``chromium`` on PATH, else Debian's ``/usr/bin/chromium``; None when there is none."""
    override = os.environ.get("NOIM_CHROMIUM")
    if override:
        return override if os.path.isfile(override) and os.access(override, os.X_OK) else None
    found = shutil.which("chromium")
    if found:
        return found
    if os.path.isfile(DEBIAN_CHROMIUM) and os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    return None


def unavailable(reason: str) -> NoReturn:
    """Skip the test for a missing browser, or fail it under ``CI=true``."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def require_chromium() -> str:
    """The path of the Chromium to drive, or skip (fail under CI=true) saying why there is none."""
    path = chromium_path()
    if path is not None:
        return path
    override = os.environ.get("NOIM_CHROMIUM")
    if override:
        unavailable(
            f"NOIM_CHROMIUM={override} is not an executable file; expected a Chromium binary"
        )
    unavailable(
        f"no Chromium found (expected `chromium` on PATH or {DEBIAN_CHROMIUM}); "
        "run `make test` as root (it runs scripts/browser-test-setup.sh, which installs "
        "Debian's chromium with apt-get) or set NOIM_CHROMIUM"
    )


def launch_args() -> list[str]:
    """Chromium's command-line switches: no sandbox as root (Chromium refuses to start
    sandboxed as root), and /tmp rather than a small /dev/shm in containers."""
    args = ["--disable-dev-shm-usage"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    return args


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (Debian's binary through Playwright).

    Per module, not per session: while Playwright's sync API is started it keeps its
    asyncio loop marked as running in this thread, so ``asyncio.run()`` (and anything
    built on it) fails until Playwright stops.  Stopping it at the end of each module
    confines that to the browser test modules; launching Chromium again takes about a
    second.
    """
    path = require_chromium()
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(
            f"Playwright is not installed ({exc}); install the dev extra: make .venv/.installed-dev"
        )
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(
            executable_path=path, headless=True, args=launch_args()
        )
    except PlaywrightError as exc:
        playwright.stop()
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        unavailable(f"Chromium at {path} did not start under Playwright: {first_line}")
    try:
        yield launched
    finally:
        launched.close()
        playwright.stop()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh context (no cookies or storage shared between tests):
    1366x768, en-GB, Europe/London.  A failing test leaves a screenshot in shots_dir()."""
    context = browser.new_context(viewport=VIEWPORT, locale=LOCALE, timezone_id=TIMEZONE)  # type: ignore[arg-type]
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    new_page = context.new_page()
    failed_before = request.session.testsfailed
    try:
        yield new_page
    finally:
        # the call phase's report is counted before fixtures are torn down
        if request.session.testsfailed > failed_before and not new_page.is_closed():
            try:
                shot(new_page, f"FAILED-{request.node.name}")
            except Exception as exc:  # a page that broke the browser must not hide the failure
                print(f"could not save a failure screenshot: {exc}")
        context.close()


def shots_dir() -> Path:
    """The folder screenshots go to: ``NOIM_SCREENSHOTS``, else ``<tmp>/noim-screenshots``; created."""
    folder = Path(
        os.environ.get("NOIM_SCREENSHOTS") or Path(tempfile.gettempdir()) / "noim-screenshots"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shot(page: Page, name: str) -> Path:
    """Save a full-page PNG of ``page`` as ``<shots_dir>/<name>.png``, print and return its path."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "screenshot"
    if not safe.lower().endswith(".png"):
        safe += ".png"
    path = shots_dir() / safe
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def _free_socket(host: str) -> socket.socket:
    """A socket bound to a free port on ``host``, handed to uvicorn as it is (no race for the port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


@contextmanager
def live_server(app: Any, host: str = "127.0.0.1", *, timeout: float = 10.0) -> Iterator[str]:
    """Run the ASGI ``app`` under uvicorn in a background thread on a free port of
    ``host``; yield its base URL (``http://127.0.0.1:PORT``, no trailing slash) once the
    app's start-up has run and the port accepts connections; stop it on exit.

    The server thread has its own asyncio loop, so the Playwright sync API can be used
    in the test's thread.  Errors in the app are logged by uvicorn to stderr (pytest shows
    them with the failing test); a start-up that fails or hangs raises RuntimeError here.
    """
    import uvicorn

    sock = _free_socket(host)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="auto",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # uvicorn ends a failed start-up with SystemExit
            failure.append(exc)

    thread = threading.Thread(target=serve, name=f"live_server:{port}", daemon=True)
    thread.start()
    url_host = f"[{host}]" if ":" in host else host
    base_url = f"http://{url_host}:{port}"
    try:
        _wait_until_answering(server, thread, failure, host, port, timeout)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
        sock.close()
        if thread.is_alive():
            raise RuntimeError(f"live server at {base_url} did not stop within {2 * timeout:g}s")


def _wait_until_answering(
    server: Any,
    thread: threading.Thread,
    failure: list[BaseException],
    host: str,
    port: int,
    timeout: float,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not thread.is_alive():
            ended = f" ({type(failure[0]).__name__}: {failure[0]})" if failure else ""
            raise RuntimeError(
                f"live server on {host}:{port} stopped during start-up{ended}; see uvicorn's "
                "log in the captured stderr; expected it to keep serving"
            )
        if server.started:
            try:
                with socket.create_connection((host, port), timeout=1):
                    return
            except OSError:
                pass
        time.sleep(0.02)
    server.should_exit = True
    raise RuntimeError(f"live server on {host}:{port} did not answer within {timeout:g}s")
