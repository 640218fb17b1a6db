"""`pip install .` (not editable) gives a working `noim` whose migrations are inside the package."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.xdist_group("packaging")  # one worker builds the wheel once


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(dist)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (found,) = dist.glob("noim-*.whl")
    return found


def test_wheel_contains_the_migrations_and_trials(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "noim/_schema/env.py" in names
    assert "noim/_schema/script.py.mako" in names
    revisions = {n for n in names if n.startswith("noim/_schema/versions/") and n.endswith(".py")}
    in_checkout = {
        f"noim/_schema/versions/{p.name}" for p in (ROOT / "schema" / "versions").glob("*.py")
    }
    assert revisions == in_checkout
    assert {"noim/trials/nim.toml", "noim/trials/example.toml"} <= names


def test_installed_wheel_initialises_a_database(wheel: Path, tmp_path: Path) -> None:
    """Install the wheel into a new virtual environment and run `noim init` from elsewhere."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    # the dependencies come from the test environment (a .pth line adds its site-packages; .pth files
    # found there are not processed, so the checkout's editable noim stays out of the way)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(purelib, "test-deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "NOIM_DATABASE_URL", "NOIM_USER")
    }
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import noim.db.migrate as m; print(m.script_location())"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert where.startswith(purelib) and where.endswith("noim/_schema")
    result = subprocess.run(
        [str(venv / "bin" / "noim"), "init", "--admin", "installer"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (work / "noim.db").exists()
    check = subprocess.run(
        [str(venv / "bin" / "noim"), "--user", "installer", "db", "check"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "schema matches the models" in check.stdout
