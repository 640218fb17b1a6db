"""``noim serve``: the real server, as a subprocess, with several worker processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from noim.db.session import Database
from noim.web import app as web_app
from tests.web.conftest import _CSRF, TEST_PASSWORD, give_passwords

NOIM = [sys.executable, "-c", "from noim.cli import main; main()"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answering(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"noim serve exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            if httpx.get(base + "/login", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"noim serve did not answer within {timeout:g} s: {log.read_text()[-2000:]}")


def test_several_worker_processes_serve_one_database(db: Database, tmp_path: Path) -> None:
    give_passwords(db)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != web_app.CONFIG_ENV}
    url = db.engine.url.render_as_string(hide_password=False)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*NOIM, "--database", url, "serve", "--port", str(port), "--workers", "2"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _answering(base, proc, log)
        pids = {
            int(line)
            for line in subprocess.run(
                ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
            ).stdout.split()
        }
        assert len(pids) >= 2, f"expected 2 worker processes of {proc.pid}, found {pids}"
        # a session made by one process is honoured by the others (it lives in the database)
        with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
            token = _CSRF.search(client.get("/login").text)
            assert token is not None
            answer = client.post(
                "/login",
                data={"name": "coord_gla", "password": TEST_PASSWORD, "csrf_token": token[1]},
            )
            assert answer.status_code == 303, answer.text[:500]
            for _ in range(6):
                home = client.get("/")
                assert home.status_code == 200 and "coord_gla" in home.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "with 2 processes" in log.read_text()


def test_a_worker_without_the_servers_settings_says_what_it_expected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(web_app.CONFIG_ENV, raising=False)
    with pytest.raises(RuntimeError, match=r"NOIM_SERVE_CONFIG is not set.*noim serve"):
        web_app.app_from_env()


def test_the_workers_settings_round_trip(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from noim.web.settings import WebSettings

    settings = WebSettings(
        idle_timeout=timedelta(minutes=7), absolute_timeout=timedelta(hours=3), secure_cookies=True
    )
    monkeypatch.setenv(web_app.CONFIG_ENV, web_app.config_for_workers(db, settings))
    app = web_app.app_from_env()
    assert app.state.settings == settings
    assert str(app.state.db.engine.url) == str(db.engine.url)
    app.state.db.dispose()
