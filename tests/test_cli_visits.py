"""``noim visit ...``, ``noim followups due`` and exclusions end to end."""

from __future__ import annotations

import json

from tests.test_cli import run
from tests.test_cli_randomisation import _ready_family


def _randomised(db_url: str) -> tuple[str, str]:
    """A Glasgow family randomised today; its boy entered care on 2024-02-01: (family, child)."""
    assert run("--database", db_url, "--user", "admin", "randomisation", "setup", "--seed", "7")
    fam = _ready_family(db_url)
    result = run("--database", db_url, "--user", "coord_gla", "randomise", fam, "--json")
    assert result.exit_code == 0, result.stderr
    return fam, json.loads(result.output)["children"][0]


def test_record_and_list_visit_outcomes(db_url: str) -> None:
    base = ("--database", db_url, "--user", "coord_gla")
    _fam, child = _randomised(db_url)
    listed = json.loads(run(*base, "visit", "list", child, "--json").output)
    assert [(v["timepoint"], v["status"]) for v in listed] == [
        ("baseline", "overdue"),  # window 2024-02-29 to 2024-05-09
        ("15m", "overdue"),
        ("30m", "scheduled"),
    ]
    assert listed[0]["window_start"] == "2024-02-29" and listed[0]["target_date"] == "2024-02-29"
    done = run(*base, "visit", "complete", child, "baseline", "--on", "2024-06-01", "--json")
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.output)["status"] == "completed_late"
    early = run(*base, "visit", "complete", child, "15m", "--on", "2025-05-01")
    assert early.exit_code == 1 and "VIS-006" in early.stderr  # before randomisation
    assert early.stderr.startswith("error: ") and "Traceback" not in early.stderr
    missed = run(*base, "visit", "missed", child, "15m", "--reason", "carer declined")
    assert missed.exit_code == 0 and "15m: missed" in missed.output
    too_soon = run(*base, "visit", "missed", child, "30m", "--reason", "no contact")
    assert too_soon.exit_code == 1 and "VIS-008" in too_soon.stderr
    unknown = run(*base, "visit", "complete", child, "6m", "--on", "2024-06-01")
    assert unknown.exit_code == 1 and "VIS-001" in unknown.stderr
    reopened = run(*base, "visit", "reopen", child, "baseline", "--reason", "wrong date")
    assert reopened.exit_code == 0 and "baseline: overdue" in reopened.output
    waived = run(*base, "visit", "not-required", child, "30m", "--reason", "moved abroad")
    assert waived.exit_code == 0, waived.stderr
    table = run(*base, "visit", "list", child)
    assert "carer" in table.output and "missed" in table.output and "not_requ" in table.output
    other = run("--database", db_url, "--user", "coord_cro", "visit", "list", child)
    assert other.exit_code == 1 and "may not" in other.stderr


def test_followups_due_and_exclusion(db_url: str) -> None:
    base = ("--database", db_url, "--user", "coord_gla")
    fam, child = _randomised(db_url)
    due = json.loads(run(*base, "followups", "due", "--json").output)
    assert [(r["child"], r["timepoint"], r["status"]) for r in due] == [
        (child, "baseline", "overdue"),
        (child, "15m", "overdue"),
    ]
    only = json.loads(run(*base, "followups", "due", "--status", "due", "--json").output)
    assert only == []
    refused = run(*base, "family", "exclude", fam, "--on", "2024-03-01", "--reason", "x")
    assert refused.exit_code == 1 and "VIS-022" in refused.stderr  # before randomisation
    excluded = run(*base, "family", "exclude", fam, "--on", "2099-01-01", "--reason", "not in care")
    assert excluded.exit_code == 1 and "VIS-023" in excluded.stderr
    researcher = ("--database", db_url, "--user", "research_gla")
    denied = run(*researcher, "child", "exclude", child, "--on", "2024-03-01", "--reason", "x")
    assert denied.exit_code == 1 and "write_trial_data" in denied.stderr
    from noim.db.base import utcnow

    today = utcnow().date().isoformat()
    ok = run(*base, "child", "exclude", child, "--on", today, "--reason", "over age", "--json")
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.output)["visits_not_required"] == 3
    assert json.loads(run(*base, "followups", "due", "--json").output) == []
    again = run(*base, "family", "exclude", fam, "--on", today, "--reason", "whole family")
    assert again.exit_code == 0 and "Excluded family" in again.output
