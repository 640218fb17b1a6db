"""The statisticians' scripts (analysis/NN_name.py) on a small randomised trial.

One SQLite database is built through the services (tests.factories.small_trial); every
script then runs as a subprocess, as a statistician would run it (two at a time), and again
in this process (``runpy``, sparing the imports): unblinded (the tables and figures must be
byte-identical to the subprocess run's) and blinded (dummy arms: every table and section
made on a seeded dummy two-arm coding, every output labelled "DUMMY ARMS: not the
allocation", and no statement of the blinded run fetches an arm).
"""

from __future__ import annotations

import csv
import json
import runpy
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from noim.db.session import Database
from noim.domain.trialdef import default_definition
from noim.extract import dummy
from noim.services import consent, freezes
from tests.conftest import Actors
from tests.factories import SmallTrial, small_trial_start

ROOT = Path(__file__).resolve().parent.parent
ANALYSIS = ROOT / "analysis"
SCRIPTS = sorted(p.name for p in ANALYSIS.glob("[0-9][0-9]_*.py"))


def comparison_columns(arms: list[str]) -> list[str]:
    """The columns of an arm comparison table: per arm (intervention first) the children
    randomised, with the outcome and analysed."""
    intervention, control = arms[0], arms[1]  # NIM, SAU (sorted; the definition names SAU)
    if control == dummy.DUMMY_ARMS[1]:  # dummy arms: DUMMY-A in the place of the control arm
        intervention, control = control, intervention
    numbers = [
        f"n_{w}_{a}" for w in ("randomised", "outcome", "analysed") for a in (intervention, control)
    ]
    return [
        "analysis",
        "method",
        "comparison",
        *numbers,
        "estimate",
        "lower",
        "upper",
        "se",
        "p",
        "effect_size",
        "n_baseline_missing",
        "n_dropped",
    ]


def expected_tables(arms: list[str]) -> dict[str, dict[str, list[str]]]:
    """Script -> table -> CSV header, for the unblinded (two-arm) run."""
    return {
        "01_consort.py": {"screening": ["stage", "n"], "flow": ["stage", *arms, "total"]},
        "02_baseline.py": {"baseline": ["characteristic", *arms, "all"]},
        "03_primary.py": {
            "primary_descriptive": ["variable", "arm", "n", "mean", "sd", "median"],
            "primary": comparison_columns(arms),
            "primary_by_sex": [
                "sex",
                "comparison",
                "estimate",
                "se",
                "lower",
                "upper",
                "statistic",
                "p",
                "n",
                "interaction_p",
            ],
        },
        "04_permanence.py": {
            "permanence_events": ["outcome", *arms],
            "cumulative_incidence": ["arm", "outcome", "months", "estimate", "lower", "upper"],
            "time_to_permanence": ["arm", "n", "events", "median", "lower", "upper"],
            "tests": ["test", "statistic", "df", "p", "note"],
            "hazard_ratios": [
                "model",
                "term",
                "measure",
                "estimate",
                "lower",
                "upper",
                "p",
                "n_dropped",
                "note",
            ],
            "rmst": ["row", "n", "estimate", "se", "lower", "upper", "statistic", "p"],
        },
        "05_placement_stability.py": {
            "moves": [
                "arm",
                "children",
                "moves",
                "mean_moves",
                "two_or_more_moves",
                "years_in_care",
                "moves_per_year",
            ],
            "reentries": ["arm", "children", "returned_home", "reentered_care"],
            "stability_effects": [
                "analysis",
                "measure",
                "estimate",
                "lower",
                "upper",
                "p",
                "method",
                "n_dropped",
            ],
        },
        "06_costs.py": {
            "costs_by_arm": ["arm", "children", "with_records", "mean", "sd", "median", "total"],
            "cost_difference": [
                "comparison",
                "interval",
                "estimate",
                "lower",
                "upper",
                "bootstrap_se",
            ],
        },
        "07_sensitivity.py": {
            "missing": ["variable", "arm", "observed", "missing", "not_yet_reached"],
            "multiple_imputation": [
                "analysis",
                "comparison",
                "n",
                "estimate",
                "lower",
                "upper",
                "se",
                "p",
                "note",
            ],
            "per_protocol": comparison_columns(arms),
        },
    }


FIGURES = {"04_permanence.py": ["cumulative_incidence", "time_to_permanence"]}


def run_script(
    script: str, url: str, out: Path, user: str, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(ANALYSIS / script),
            "--database",
            url,
            "--out",
            str(out),
            "--user",
            user,
            "--as-of",
            "2026-10-31",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run_here(
    script: str,
    url: str,
    out: Path,
    user: str,
    monkeypatch: pytest.MonkeyPatch,
    when: tuple[str, ...] = ("--as-of", "2026-10-31"),
) -> None:
    """Run a script in this process, as ``python analysis/<script> ...`` would."""
    argv = [script, "--database", url, "--out", str(out), "--user", user, *when]
    with monkeypatch.context() as m:
        m.setattr(sys, "argv", argv)
        m.syspath_prepend(str(ANALYSIS))
        runpy.run_path(str(ANALYSIS / script), run_name="__main__")


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


#: a test given ``trial`` starts from a copy of the 32-family trial (built once per run);
#: its babies have no baseline SDQ
prebuilt, db_url, trial = small_trial_start(32, no_baseline_under_months=24)


@pytest.mark.sqlite_only
def test_every_script_runs_blinded_and_unblinded_and_reruns_identically(
    db_url: str, trial: SmallTrial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(SCRIPTS) == 7
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(
            pool.map(lambda s: run_script(s, db_url, tmp_path / "a" / s, "unblinded_stat"), SCRIPTS)
        )
    for script, proc in zip(SCRIPTS, done, strict=True):
        assert proc.returncode == 0, f"{script} failed:\n{proc.stderr}"
    statements: list[str] = []  # every SQL statement of the blinded runs

    def before(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    for script in SCRIPTS:
        run_here(script, db_url, tmp_path / "b" / script, "unblinded_stat", monkeypatch)
        event.listen(Engine, "before_cursor_execute", before)
        try:
            run_here(script, db_url, tmp_path / "blind" / script, "statistician", monkeypatch)
        finally:
            event.remove(Engine, "before_cursor_execute", before)
    assert statements and not [s for s in statements if "arm_code" in s or "arms.name" in s]

    arms = sorted(set(trial.arms.values()))
    n_children = sum(len(v) for v in trial.children.values())
    for script, tables in expected_tables(arms).items():
        a, b = tmp_path / "a" / script, tmp_path / "b" / script
        for name, header in tables.items():
            for suffix in (".csv", ".md"):
                assert (a / f"{name}{suffix}").read_bytes() == (
                    b / f"{name}{suffix}"
                ).read_bytes(), f"{script}: {name}{suffix} differs between two runs"
            with (a / f"{name}.csv").open(encoding="utf-8") as f:
                assert next(csv.reader(f)) == header, f"{script}: {name}.csv columns"
            assert (a / f"{name}.md").read_text().startswith("## ")
        for stem in FIGURES.get(script, []):
            assert (a / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
            assert (a / f"{stem}.svg").read_bytes() == (b / f"{stem}.svg").read_bytes()
        provenance = json.loads((a / "provenance.json").read_text())
        assert provenance["script"] == script and provenance["as_of"] == "2026-10-31"
        assert provenance["arm_coding"] == "allocated"
        assert provenance["database"] == db_url and provenance["noim_version"]
        written = {p.name for p in a.iterdir()} - {"provenance.json"}
        assert set(provenance["files"]) == written
        assert "allocated arm codes" in (a / "report.md").read_text()
        assert dummy.DUMMY_LABEL not in (a / "report.md").read_text()
        # blinded: the same tables and figures on the dummy arms, every one labelled
        blind = tmp_path / "blind" / script
        report = (blind / "report.md").read_text()
        assert report.startswith(f"# [{dummy.DUMMY_LABEL}] ") and "only pooled" not in report
        assert report.count(dummy.DUMMY_LABEL) >= 1 + len(tables)
        provenance = json.loads((blind / "provenance.json").read_text())
        assert provenance["arm_coding"] == "dummy" and provenance["arm_label"] == dummy.DUMMY_LABEL
        assert provenance["dummy_seed"] == dummy.DEFAULT_SEED
        for name, header in expected_tables(list(dummy.DUMMY_ARMS))[script].items():
            rows = read_csv(blind / f"{name}.csv")
            assert list(rows[0]) == ["arm_coding", *header], f"{script}: {name}.csv"
            assert {r["arm_coding"] for r in rows} == {dummy.DUMMY_LABEL}
            assert (blind / f"{name}.md").read_text().startswith(f"## [{dummy.DUMMY_LABEL}] ")
        for stem in FIGURES.get(script, []):
            assert f"<!-- {dummy.DUMMY_LABEL}" in (blind / f"{stem}.svg").read_text()
        outputs = [p for p in blind.iterdir() if p.suffix in (".csv", ".md", ".json")]
        assert not [p.name for p in outputs if real_arm_named(p.read_text())]

    # a few numbers that must agree across the scripts and with the trial built
    flow = {r["stage"]: r for r in read_csv(tmp_path / "a" / "01_consort.py" / "flow.csv")}
    assert int(flow["children randomised"]["total"]) == n_children
    assert int(flow["families randomised"]["total"]) == len(trial.arms)
    primary = read_csv(tmp_path / "a" / "03_primary.py" / "primary.csv")
    # every child with the outcome is analysed, babies without a baseline SDQ too
    # (missing-indicator method), intervention minus control, per arm numbers stated
    assert trial.no_baseline and primary[0]["comparison"] == "NIM - SAU"
    row, dropped = primary[0], primary[-1]
    assert int(row["n_baseline_missing"]) > 0 and int(dropped["n_baseline_missing"]) == 0
    for arm in arms:
        assert int(row[f"n_randomised_{arm}"]) == int(flow["children randomised"][arm])
        assert int(row[f"n_outcome_{arm}"]) == int(row[f"n_analysed_{arm}"])
        assert int(row[f"n_analysed_{arm}"]) == int(
            flow["analysed (ITT, SDQ at 30m; primary analysis)"][arm]
        )
        assert int(dropped[f"n_analysed_{arm}"]) <= int(row[f"n_analysed_{arm}"])
    assert sum(int(dropped[f"n_analysed_{a}"]) for a in arms) == sum(
        int(row[f"n_analysed_{a}"]) for a in arms
    ) - int(row["n_baseline_missing"])
    text = (tmp_path / "a" / "03_primary.py" / "primary.md").read_text()
    assert "intervention minus control (NIM - SAU)" in text and "control arm, SAU," in text
    assert "White & Thompson" in text
    events = read_csv(tmp_path / "a" / "04_permanence.py" / "permanence_events.csv")
    assert sum(int(r[arm]) for r in events for arm in arms) == int(flow["in the ITT set"]["total"])
    mi = read_csv(tmp_path / "a" / "07_sensitivity.py" / "multiple_imputation.csv")
    # the complete case of 07 is 03's ANCOVA of the children with a baseline (robust SE)
    assert [float(mi[1][k]) for k in ("estimate", "se")] == pytest.approx(
        [float(dropped[k]) for k in ("estimate", "se")], rel=1e-8
    )
    assert mi[0]["comparison"] == "NIM - SAU"
    pp = read_csv(tmp_path / "a" / "07_sensitivity.py" / "per_protocol.csv")
    assert pp[0]["estimate"] == row["estimate"] and pp[0]["comparison"] == "NIM - SAU"
    cost = read_csv(tmp_path / "a" / "06_costs.py" / "cost_difference.csv")
    assert {r["comparison"] for r in cost} == {"NIM - SAU"}
    for script, table in (
        ("04_permanence.py", "hazard_ratios"),
        ("04_permanence.py", "rmst"),
        ("05_placement_stability.py", "stability_effects"),
        ("06_costs.py", "cost_difference"),
        ("07_sensitivity.py", "multiple_imputation"),
    ):
        md = (tmp_path / "a" / script / f"{table}.md").read_text()
        assert "intervention minus control (NIM - SAU" in md, (script, table)
        assert "randomised / with " in md, (script, table)
    hazards = read_csv(tmp_path / "a" / "04_permanence.py" / "hazard_ratios.csv")
    assert {r["term"] for r in hazards if r["term"]} == {"arm[T.NIM]"}
    rmst = read_csv(tmp_path / "a" / "04_permanence.py" / "rmst.csv")
    assert rmst[-1]["row"] == "NIM - SAU"
    # not yet due is not missing: the 30m outcomes of the families randomised last are not
    # yet due on 2026-10-31 (window 28-34 months); they are neither missing nor imputed
    status = read_csv(tmp_path / "a" / "07_sensitivity.py" / "missing.csv")
    outcome = {r["arm"]: r for r in status if r["variable"] == "sdq_total_difficulties_30m"}
    waiting = sum(int(r["not_yet_reached"]) for r in outcome.values())
    missing = sum(int(r["missing"]) for r in outcome.values())
    itt = int(flow["in the ITT set"]["total"])
    assert waiting > 0 and missing > 0
    assert waiting + missing + sum(int(r["observed"]) for r in outcome.values()) == itt
    assert int(flow["ITT, 30m outcome not yet reached (visit not yet due)"]["total"]) == waiting
    assert int(flow["ITT, 30m outcome missing (visit due)"]["total"]) == missing
    assert int(mi[0]["n"]) == itt - waiting
    # blinded: dummy arms balanced in families, and a comparison of the two dummy arms,
    # with the dummy direction note where the allocated run names the arms
    blind = {r["stage"]: r for r in read_csv(tmp_path / "blind" / "01_consort.py" / "flow.csv")}
    per_arm = [int(blind["families randomised"][a]) for a in dummy.DUMMY_ARMS]
    assert sum(per_arm) == len(trial.arms) and abs(per_arm[0] - per_arm[1]) <= 1
    fake = read_csv(tmp_path / "blind" / "03_primary.py" / "primary.csv")
    assert fake[0]["comparison"] == "DUMMY-B - DUMMY-A" and float(fake[0]["se"]) > 0
    md = (tmp_path / "blind" / "07_sensitivity.py" / "multiple_imputation.md").read_text()
    assert dummy.DIRECTION in md


def real_arm_named(text: str) -> list[str]:
    """The arm codes (whole words) and arm names of the trial definition found in ``text``."""
    import re

    arms = default_definition().arms
    codes = [a.code for a in arms if re.search(rf"(?<![A-Za-z0-9]){a.code}(?![A-Za-z0-9])", text)]
    return codes + [a.name for a in arms if a.name.lower() in text.lower()]


def test_refused_without_the_analyse_capability(db_url: str, tmp_path: Path) -> None:
    proc = run_script("01_consort.py", db_url, tmp_path / "out", "coord_gla")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "provenance.json").exists()
    proc = run_script("02_baseline.py", db_url, tmp_path / "out", "nobody")
    assert proc.returncode == 1 and proc.stderr.startswith("error: ")


def test_markdown_writer_and_password_hiding() -> None:
    sys.path.insert(0, str(ANALYSIS))
    try:
        import pandas as pd
        from _common import hide_password, markdown
    finally:
        sys.path.remove(str(ANALYSIS))
    df = pd.DataFrame(
        {"a": ["x|y", None], "b": [1.23456, float("inf")], "c": [True, False], "d": [2, 3]}
    )
    assert markdown(df) == (
        "| a | b | c | d |\n|---|---|---|---|\n| x\\|y | 1.235 | yes | 2 |\n"
        "|  | not reached | no | 3 |\n"
    )
    url = hide_password("postgresql+psycopg://stat:s3cret@db.example/noim")
    assert "s3cret" not in url and url.startswith("postgresql+psycopg://stat:***@")


def test_scripts_on_a_trial_with_nobody_randomised(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for script in SCRIPTS:
        run_here(script, db_url, tmp_path / script, "unblinded_stat", monkeypatch)
        report = (tmp_path / script / "report.md").read_text()
        assert "No randomised children" in report, script
        assert (tmp_path / script / "provenance.json").exists()


@pytest.mark.sqlite_only
def test_a_script_on_a_freeze_gives_the_same_tables_after_the_data_change(
    db_url: str,
    db: Database,
    actors: Actors,
    trial: SmallTrial,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = freezes.create_freeze(db, actors["datamanager"], label="DMC 1")
    when = ("--freeze", str(frozen.id))
    scripts = ("02_baseline.py", "03_primary.py", "04_permanence.py")
    for script in scripts:
        run_here(script, db_url, tmp_path / "a" / script, "unblinded_stat", monkeypatch, when)
    # the data change after the freeze: a child withdraws from the use of its data
    child = next(iter(trial.children.values()))[0]
    consent.record_withdrawal(db, actors["admin"], child, frozen.as_of, "data", "carer", "asked")
    for script in scripts:
        run_here(script, db_url, tmp_path / "b" / script, "unblinded_stat", monkeypatch, when)
        run_here(
            script,
            db_url,
            tmp_path / "live" / script,
            "unblinded_stat",
            monkeypatch,
            ("--as-of", frozen.as_of.isoformat()),
        )
        a, b, live = (tmp_path / x / script for x in ("a", "b", "live"))
        tables = sorted(p.name for p in a.iterdir() if p.suffix in (".csv", ".md"))
        assert tables
        for name in tables:
            assert (a / name).read_bytes() == (b / name).read_bytes(), f"{script}: {name}"
        provenance = json.loads((a / "provenance.json").read_text())
        assert provenance["freeze"]["id"] == frozen.id
        assert provenance["freeze"]["content_sha256"] == frozen.content_sha256
        assert provenance["as_of"] == frozen.as_of.isoformat()
        assert f"data freeze {frozen.id} (DMC 1" in (a / "report.md").read_text()
        assert json.loads((live / "provenance.json").read_text())["freeze"] is None
    # the live data did change: the baseline table read live differs from the frozen one
    base = "02_baseline.py"
    assert any(
        (tmp_path / "a" / base / n).read_bytes() != (tmp_path / "live" / base / n).read_bytes()
        for n in (p.name for p in (tmp_path / "a" / base).glob("*.csv"))
    )
    both = run_script("02_baseline.py", db_url, tmp_path / "x", "unblinded_stat", when)
    assert both.returncode == 1 and "not both" in both.stderr
