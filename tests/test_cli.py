"""The command line: help everywhere, JSON output, one-line errors, exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from noim.cli import noim_cli
from noim.config import os_user
from noim.db import migrate, revisions
from tests.dbutil import drop_protection, raw


def walk(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # imports each command's module (lazy groups)
        cmd = group.get_command(ctx, name)
        assert cmd is not None, f"noim {' '.join(path)} lists {name}, which does not load"
        yield (*path, name), cmd
        if isinstance(cmd, click.Group):
            yield from walk(cmd, (*path, name))


ALL_COMMANDS = list(walk(noim_cli))


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    base: dict[str, str | None] = {"NOIM_DATABASE_URL": None, "NOIM_USER": None, "NOIM_DEBUG": None}
    return CliRunner().invoke(noim_cli, list(args), env={**base, **(env or {})})


@pytest.mark.parametrize(("path", "cmd"), ALL_COMMANDS, ids=[" ".join(p) for p, _ in ALL_COMMANDS])
def test_every_command_has_help(path: tuple[str, ...], cmd: click.Command) -> None:
    assert cmd.help and cmd.help.strip(), f"noim {' '.join(path)} has no help text"
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output
    for param in cmd.params:
        if isinstance(param, click.Option) and not param.hidden and param.name not in ("help",):
            assert param.help, f"option {param.name} of noim {' '.join(path)} has no help"


def test_the_command_set() -> None:
    names = {" ".join(p) for p, _ in ALL_COMMANDS}
    assert {
        "init",
        "db upgrade",
        "db current",
        "db check",
        "users add",
        "users list",
        "users update",
        "trial show",
        "audit verify",
        "audit show",
        "demo",
    } <= names


def test_init_defaults_to_noim_db_here_and_the_os_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("init")
    assert result.exit_code == 0, result.output + result.stderr
    assert (tmp_path / "noim.db").exists()
    assert f"Administrator: {os_user()}" in result.output
    listed = run("users", "list", "--json")  # NOIM_USER unset: acts as the OS user
    assert listed.exit_code == 0, listed.stderr
    assert json.loads(listed.output)[0]["role"] == "administrator"
    again = run("init")
    assert (
        again.exit_code == 1
        and again.stderr.startswith("error: database ")
        and "already holds a trial" in again.stderr
    )


def test_init_honours_noim_database_url_admin_and_trial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'ex.db'}"
    result = run(
        "init", "--trial", "example", "--admin", "boss", "--json", env={"NOIM_DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.output)
    assert (info["trial_code"], info["admin_name"], info["sites"]) == (
        "PARENT",
        "boss",
        ["LEE", "BRI", "CAR"],
    )
    shown = run("trial", "show", "--json", env={"NOIM_DATABASE_URL": url, "NOIM_USER": "boss"})
    assert json.loads(shown.output)["randomisation"]["method"] == "blocks"


def test_bad_trial_file_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[trial]\ncode = "X"\n', encoding="utf-8")
    result = run("--database", f"sqlite:///{tmp_path / 'x.db'}", "init", "--trial", str(bad))
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"error: invalid trial definition {bad}: key trial.short_name: missing"
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr + result.output
    assert not (tmp_path / "x.db").exists()
    assert run("trial", "validate", "nim").exit_code == 0
    assert run("trial", "validate", str(bad)).exit_code == 1


def test_missing_database_and_unknown_user(tmp_path: Path, db_url: str) -> None:
    missing = run("--database", f"sqlite:///{tmp_path / 'none.db'}", "users", "list")
    assert (
        missing.exit_code == 1
        and "no database at" in missing.stderr
        and "noim init" in missing.stderr
    )
    ghost = run("--database", db_url, "--user", "ghost", "users", "list")
    assert ghost.exit_code == 1
    assert ghost.stderr.startswith("error: no noim user 'ghost'")


def test_users_commands(db_url: str) -> None:
    added = run(
        "--database",
        db_url,
        "--user",
        "admin",
        "users",
        "add",
        "kim",
        "--role",
        "coordinator",
        "--site",
        "GLA",
        "--json",
    )
    assert added.exit_code == 0, added.stderr
    assert json.loads(added.output)["sites"] == ["GLA"]
    refused = run(
        "--database", db_url, "--user", "kim", "users", "add", "lee", "--role", "statistician"
    )
    assert refused.exit_code == 1 and "may not add users" in refused.stderr
    upd = run(
        "--database",
        db_url,
        "--user",
        "admin",
        "users",
        "update",
        "kim",
        "--add-site",
        "CRO",
        "--reason",
        "covering Croydon",
    )
    assert upd.exit_code == 0 and "sites CRO, GLA" in upd.output
    listed = json.loads(
        run("--database", db_url, "--user", "admin", "users", "list", "--json").output
    )
    assert {u["name"] for u in listed} >= {"admin", "kim", "coord_gla", "dmc_chair"}


def test_family_workflow_and_audit(db_url: str) -> None:
    base = ("--database", db_url, "--user", "coord_gla")
    fam = json.loads(
        run(*base, "family", "register", "--site", "GLA", "--la", "GCC", "--json").output
    )
    child = run(
        *base,
        "child",
        "add",
        fam["trial_id"],
        "--dob",
        "2023-02-01",
        "--sex",
        "female",
        "--entered-care",
        "2024-01-10",
        "--legal-route",
        "sc.cpo",
        "--json",
    )
    assert child.exit_code == 0, child.stderr
    child_id = json.loads(child.output)["trial_id"]
    bad = run(
        *base,
        "child",
        "add",
        fam["trial_id"],
        "--dob",
        "2024-02-01",
        "--sex",
        "female",
        "--entered-care",
        "2024-01-10",
    )
    assert bad.exit_code == 1
    assert (
        "field entered_care_on: got '2024-01-10'; expected a date on or after the date of birth"
        in bad.stderr
    )
    fixed = run(*base, "child", "correct", child_id, "--sex", "male", "--reason", "form said M")
    assert fixed.exit_code == 0, fixed.stderr
    shown = json.loads(run(*base, "family", "show", fam["trial_id"], "--json").output)
    assert shown["children"][0]["sex"] == "male"
    other_site = run("--database", db_url, "--user", "coord_cro", "family", "show", fam["trial_id"])
    assert other_site.exit_code == 1 and "at site 'GLA'" in other_site.stderr
    history = run(
        "--database",
        db_url,
        "--user",
        "admin",
        "audit",
        "show",
        "--table",
        "children",
        "--key",
        child_id,
        "--json",
    )
    rows = json.loads(history.output)
    assert [r["action"] for r in rows] == ["insert", "update"]
    assert rows[1]["reason"] == "form said M" and rows[1]["user"] == "coord_gla"
    verify = run("--database", db_url, "--user", "datamanager", "audit", "verify")
    assert verify.exit_code == 0 and "audit chain intact" in verify.output


def test_audit_verify_fails_after_tampering(db_url: str) -> None:
    run("--database", db_url, "--user", "coord_cro", "family", "register", "--site", "CRO")
    with raw(db_url) as conn:
        drop_protection(conn, "audit_log")
        from sqlalchemy import text

        conn.execute(text("UPDATE audit_log SET user_name = 'mallory' WHERE seq = 2"))
    result = run("--database", db_url, "--user", "admin", "audit", "verify", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["chain"]["first_bad_seq"] == 2 and not report["ok"]


def test_db_commands(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    base = ("--database", db_url, "--user", "admin")
    current = json.loads(run(*base, "db", "current", "--json").output)
    assert current["up_to_date"] and current["revision"] == migrate.head()
    assert run(*base, "db", "check").exit_code == 0
    tables = json.loads(run(*base, "db", "tables", "--json").output)
    assert tables["users"] == 9 and tables["sites"] == 2
    upgraded = run(*base, "db", "upgrade")
    assert upgraded.exit_code == 0 and "Already at revision" in upgraded.output
    assert run("--database", db_url, "--user", "coord_gla", "db", "upgrade").exit_code == 1
    # a database behind the code: every command but the db ones refuses it and says how to upgrade
    monkeypatch.setattr(revisions, "head", lambda: "9999_future")
    refused = run(*base, "users", "list")
    assert refused.exit_code == 1
    assert (
        "run `noim db upgrade`" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    )
    behind = run(*base, "db", "current")
    assert behind.exit_code == 0 and "BEHIND" in behind.output


def test_bad_date_and_bad_id_are_usage_errors(db_url: str) -> None:
    result = run(
        "--database",
        db_url,
        "--user",
        "coord_gla",
        "child",
        "add",
        "G-0001-X",
        "--dob",
        "01/02/2023",
        "--sex",
        "female",
        "--entered-care",
        "2024-01-10",
    )
    assert result.exit_code == 2 and "expected YYYY-MM-DD" in result.stderr
    bad_id = run("--database", db_url, "--user", "coord_gla", "family", "show", "G-0001")
    assert bad_id.exit_code == 1 and "expected a family ID like G-0001-X" in bad_id.stderr


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    """``noim --help`` and one-record commands load neither pandas, SciPy, statsmodels nor
    matplotlib: coordinators run them dozens of times a day (DESIGN.md, start-up cost)."""
    import subprocess
    import sys

    code = (
        "import sys; import noim.cli; "
        "print(','.join(m for m in ('pandas', 'scipy', 'statsmodels', 'matplotlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"importing noim.cli loads {out}"
