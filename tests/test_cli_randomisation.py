"""The randomisation commands end to end."""

from __future__ import annotations

import json

from tests.test_cli import run


def _family_with_child(
    db_url: str, dob: str = "2023-06-01", user: str = "coord_gla"
) -> tuple[str, str]:
    """Register a Glasgow family with one boy who entered care on 2024-02-01: (family, child) IDs."""
    base = ("--database", db_url, "--user", user)
    fam = json.loads(run(*base, "family", "register", "--site", "GLA", "--json").output)["trial_id"]
    added = run(
        *base,
        "child",
        "add",
        fam,
        "--dob",
        dob,
        "--sex",
        "male",
        "--entered-care",
        "2024-02-01",
        "--json",
    )
    return fam, json.loads(added.output)["trial_id"]


def _ready_family(db_url: str, user: str = "coord_gla") -> str:
    base = ("--database", db_url, "--user", user)
    fam, child = _family_with_child(db_url, user=user)
    assert (
        run(*base, "child", "eligibility", child, "--eligible", "--on", "2024-03-01").exit_code == 0
    )
    added = run(
        *base,
        "consent",
        "add",
        child,
        "--by",
        "local_authority",
        "--form-version",
        "v3",
        "--on",
        "2024-03-02",
    )
    assert added.exit_code == 0, added.stderr
    return fam


def test_randomise_list_balance(db_url: str) -> None:
    admin = ("--database", db_url, "--user", "admin")
    assert run(*admin, "randomisation", "setup", "--seed", "99").exit_code == 0
    fam = _ready_family(db_url)
    result = run("--database", db_url, "--user", "coord_gla", "randomise", fam, "--json")
    assert result.exit_code == 0, result.stderr
    allocation = json.loads(result.output)
    assert allocation["arm"] in ("NIM", "SAU") and allocation["sequence"] == 1
    again = run("--database", db_url, "--user", "coord_gla", "randomise", fam)
    assert again.exit_code == 1 and "already randomised" in again.stderr
    listed = json.loads(run(*admin, "randomisation", "list", "--json").output)
    assert set(listed[0]) == {"family", "site", "arm", "sequence", "randomised_at", "children"}
    assert listed[0]["family"] == fam and len(listed[0]["children"]) == 1
    balance = json.loads(run(*admin, "randomisation", "balance", "--json").output)
    assert balance[0]["factor"] == "overall" and sum(balance[0]["counts"].values()) == 1
    refused = run("--database", db_url, "--user", "statistician", "randomisation", "list")
    assert refused.exit_code == 1 and "may not see allocations" in refused.stderr


def test_gate_message_lists_each_missing_item(db_url: str) -> None:
    run("--database", db_url, "--user", "admin", "randomisation", "setup", "--seed", "5")
    base = ("--database", db_url, "--user", "coord_gla")
    fam, _child = _family_with_child(db_url)
    result = run(*base, "randomise", fam)
    assert result.exit_code == 1
    assert "RND-004" in result.stderr and "RND-005" in result.stderr


def test_simulate_json() -> None:
    result = run(
        "randomisation", "simulate", "--families", "100", "--reps", "50", "--seed", "3", "--json"
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.output)
    assert summary["method"] == "minimisation" and summary["reps"] == 50
    assert abs(sum(summary["arm_share"].values()) - 1) < 1e-9
    blocks = json.loads(
        run(
            "randomisation",
            "simulate",
            "--families",
            "100",
            "--reps",
            "50",
            "--method",
            "blocks",
            "--json",
        ).output
    )
    assert blocks["within_stratum_imbalance"]["max"] <= 2


def test_assessment_commands(db_url: str) -> None:
    base = ("--database", db_url, "--user", "coord_gla")
    _fam, child = _family_with_child(db_url, dob="2021-06-01")
    items = [f"--item={n}=1" for n in range(1, 26)]
    added = run(
        *base,
        "assessment",
        "add",
        child,
        "--timepoint",
        "baseline",
        "--instrument",
        "sdq",
        "--form",
        "2-4",
        "--on",
        "2024-03-20",
        *items,
        "--json",
    )
    assert added.exit_code == 0, added.stderr
    view = json.loads(added.output)
    assert view["scores"]["total_difficulties"] == 20
    fixed = run(
        *base,
        "assessment",
        "correct",
        str(view["id"]),
        "--item",
        "3=2",
        "--reason",
        "misread",
        "--json",
    )
    assert json.loads(fixed.output)["scores"]["emotional"] == 6
    bad = run(
        *base,
        "assessment",
        "add",
        child,
        "--timepoint",
        "baseline",
        "--instrument",
        "sdq",
        "--on",
        "2024-03-20",
        "--item",
        "3=9",
    )
    assert bad.exit_code == 1 and "item 3: got 9; expected one of 0, 1, 2 or None" in bad.stderr


def test_followups_due(db_url: str) -> None:
    run("--database", db_url, "--user", "admin", "randomisation", "setup", "--seed", "7")
    fam = _ready_family(db_url)
    assert run("--database", db_url, "--user", "coord_gla", "randomise", fam).exit_code == 0
    result = run(
        "--database",
        db_url,
        "--user",
        "coord_gla",
        "followups",
        "due",
        "--within",
        "3650",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.output)
    assert [r["timepoint"] for r in rows] == ["baseline", "15m", "30m"]
    assert rows[0]["status"] == "overdue"  # entered care in 2024: the baseline window has closed


def test_child_withdraw(db_url: str) -> None:
    run("--database", db_url, "--user", "admin", "randomisation", "setup", "--seed", "8")
    fam = _ready_family(db_url)
    allocation = json.loads(
        run("--database", db_url, "--user", "coord_gla", "randomise", fam, "--json").output
    )
    child = allocation["children"][0]
    result = run(
        "--database",
        db_url,
        "--user",
        "coord_gla",
        "child",
        "withdraw",
        child,
        "--level",
        "follow_up",
        "--on",
        "2025-06-01",
        "--requested-by",
        "carer",
        "--reason",
        "family moved away",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    # entered care 2024-02-01: the 15-month window (to 2025-08-01) and the 30-month visit were ahead
    assert json.loads(result.output)["visits_not_required"] == 2
