"""``noim demo`` killed part-way (SIGKILL, as by a power cut or an impatient user).

SQLite: the trial is built in a side file moved into place only when complete, so the kill
leaves no database behind and the same command, run again, builds a complete trial that
passes ``noim audit verify``.  (Before issue 11 the kill left a half-built trial that
``noim demo`` refused: "already holds families".)  PostgreSQL: the same command refuses the
half-built database and says how to reset it; after that reset it succeeds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from noim.cli import noim_cli
from noim.db.staging import partial_path
from tests.conftest import PgServer

AS_OF = date(2026, 6, 30)
#: the stage announced once families, screening and randomisations are committed
KILL_AT = "... follow-up"
#: the demo's size: small (what is tested is the kill and the rerun, not the size)
FAMILIES = 8


def run(*args: str) -> Result:
    env: dict[str, str | None] = {"NOIM_DATABASE_URL": None, "NOIM_USER": None, "NOIM_DEBUG": None}
    return CliRunner().invoke(noim_cli, list(args), env=env)


def demo_args(url: str, out: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from noim.cli import main; main()",
        "demo",
        "--database",
        url,
        "--families",
        str(FAMILIES),
        "--as-of",
        AS_OF.isoformat(),
        "--out",
        str(out),
        "--json",
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("NOIM_DATABASE_URL", "NOIM_USER", "NOIM_DEBUG"):
        env.pop(name, None)
    return env


def kill_part_way(args: list[str]) -> list[str]:
    """Start the demo, SIGKILL it once it announces ``KILL_AT``; the stages it announced."""
    args = [a for a in args if a != "--json"]  # the stages are announced without --json
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env()
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line.strip())
        if line.strip() == KILL_AT:
            proc.send_signal(signal.SIGKILL)
            break
    proc.stderr.close()
    assert proc.wait(timeout=60) == -signal.SIGKILL, seen
    assert KILL_AT in seen, f"the demo ended before {KILL_AT!r}: {seen}"
    return seen


def run_demo(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, env=_env(), check=False, timeout=600
    )


def assert_complete_and_verified(url: str, summary: dict[str, object]) -> None:
    assert summary["families"] == FAMILIES
    verify = run("--database", url, "--user", "admin", "audit", "verify")
    assert verify.exit_code == 0, verify.output
    assert "audit chain intact" in verify.output and "data agree" in verify.output
    check = run("--database", url, "--user", "admin", "check", "--json")
    assert check.exit_code == 0, check.output
    hard = [r for r in json.loads(check.output)["rules"] if r["severity"] == "hard"]
    assert hard and all(r["violations"] == 0 for r in hard), hard
    freezes = run("--database", url, "--user", "admin", "freeze", "list", "--json")
    assert freezes.exit_code == 0 and len(json.loads(freezes.output)) == 1, freezes.output


@pytest.mark.sqlite_only
def test_a_demo_killed_part_way_is_built_again_by_the_same_command(
    backend: str, tmp_path: Path
) -> None:
    path = tmp_path / "demo" / "noim.db"
    url = f"sqlite:///{path}"
    args = demo_args(url, tmp_path / "reports")
    kill_part_way(args)
    assert not path.exists(), "a killed build left a half-built database in place"
    assert partial_path(path).exists()  # the side file it was building in
    again = run_demo(args)
    assert again.returncode == 0, again.stderr
    assert not partial_path(path).exists()
    assert not Path(f"{path}-wal").exists()
    assert_complete_and_verified(url, json.loads(again.stdout))
    # a finished demonstration is not built twice; the refused run leaves it as it was
    before = path.read_bytes()
    twice = run_demo(args)
    assert twice.returncode == 1 and "already holds families" in twice.stderr, twice.stderr
    assert path.read_bytes() == before and not partial_path(path).exists()


@pytest.mark.postgresql_only
def test_a_demo_killed_part_way_on_postgresql_says_how_to_reset(
    backend: str, empty_url: str, tmp_path: Path, pg_server: PgServer
) -> None:
    args = demo_args(empty_url, tmp_path / "reports")
    kill_part_way(args)
    refused = run_demo(args)
    name = make_url(empty_url).database
    assert refused.returncode == 1, refused.stderr
    assert "already holds families" in refused.stderr
    assert f"dropdb {name} && createdb {name}" in refused.stderr
    assert "run the same command" in refused.stderr and "Traceback" not in refused.stderr
    assert name is not None
    pg_server.drop(name)  # the reset the message describes
    pg_server.create(name)
    again = run_demo(args)
    assert again.returncode == 0, again.stderr
    assert_complete_and_verified(empty_url, json.loads(again.stdout))


@pytest.mark.sqlite_only
def test_a_staged_build_that_fails_leaves_the_database_as_it_was(
    backend: str, tmp_path: Path
) -> None:
    from sqlalchemy import text

    from noim.db.session import make_engine
    from noim.db.staging import staged

    path = tmp_path / "noim.db"
    url = f"sqlite:///{path}"

    def rows(u: str) -> list[int]:
        engine = make_engine(u, null_pool=True)
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
                return [int(x) for (x,) in conn.execute(text("SELECT x FROM t ORDER BY x"))]
        finally:
            engine.dispose()

    def add(u: str, x: int) -> None:
        rows(u)
        engine = make_engine(u, null_pool=True)
        try:
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": x})
        finally:
            engine.dispose()

    add(url, 1)
    partial_path(path).write_bytes(b"left by a killed build")  # removed before a new start
    with pytest.raises(RuntimeError, match="the build failed"), staged(url) as building:
        assert building != url and rows(building) == [1]  # a copy of the database
        add(building, 2)
        raise RuntimeError("the build failed")
    assert rows(url) == [1] and not partial_path(path).exists()
    with staged(url) as building:
        add(building, 3)
    assert rows(url) == [1, 3] and not partial_path(path).exists()
