"""``noim demo``: a synthetic trial built through the real services (small sizes only).

The default size (390 families) is timed by hand, not here (see the issue 6 report).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from noim import extract
from noim.cli import noim_cli
from noim.db.models import Allocation, AuditLog, Child, DerivedScore, FollowUpVisit, LegalEvent
from noim.db.session import Database
from noim.domain.exceptions import AlreadyExists, ValidationError
from noim.domain.trialdef import default_definition
from noim.services import demo, randomisation, users
from tests.conftest import Actors
from tests.factories import family_with_children

AS_OF = date(2026, 6, 30)


def run(*args: str) -> Result:
    env: dict[str, str | None] = {"NOIM_DATABASE_URL": None, "NOIM_USER": None, "NOIM_DEBUG": None}
    return CliRunner().invoke(noim_cli, list(args), env=env)


def build(url: str, n: int = 30, seed: int = 7, **kw: object) -> demo.DemoResult:
    return demo.build_demo(url, default_definition(), n, seed, as_of=AS_OF, **kw)  # type: ignore[arg-type]


def test_small_demo_passes_the_audit_and_the_rules(empty_url: str) -> None:
    result = build(empty_url)
    assert result.families == 30 and result.children > 30 and result.screened > 30
    assert set(result.randomised) == {"NIM", "SAU"} and sum(result.randomised.values()) == 30
    assert set(result.permanence) == {"return_home", "adoption", "kinship", "long_term_foster"}
    assert result.visits["completed"] > 0 and result.visits["missed"] > 0
    verify = run("--database", empty_url, "--user", "admin", "audit", "verify")
    assert verify.exit_code == 0, verify.output
    assert "audit chain intact" in verify.output
    check = run("--database", empty_url, "--user", "admin", "check", "--json")
    assert check.exit_code == 0, check.output
    hard = [r for r in json.loads(check.output)["rules"] if r["severity"] == "hard"]
    assert hard and all(r["violations"] == 0 for r in hard), hard
    db = Database(empty_url)
    try:
        with db.read() as s:
            rows = s.execute(
                select(Allocation.arm_code, func.count(Child.id))
                .join(Child, Child.family_id == Allocation.family_id)
                .group_by(Allocation.arm_code)
            ).all()
            kids_per_arm = {arm: int(n) for arm, n in rows}
            assert set(kids_per_arm) == {"NIM", "SAU"}
            assert (s.scalar(select(func.count()).select_from(DerivedScore)) or 0) > 100
            latest = [
                s.scalar(select(func.max(LegalEvent.event_date))),
                s.scalar(select(func.max(FollowUpVisit.completed_on))),
            ]
            assert all(d is not None and d <= AS_OF for d in latest)
            early = s.scalar(select(func.min(Allocation.randomised_at)))
            assert early is not None and early.date() < AS_OF - timedelta(days=3 * 365)
            reasons = s.scalars(
                select(AuditLog.reason).where(AuditLog.table_name == "allocations").distinct()
            ).all()
            assert reasons and all("back-dated" in (r or "") for r in reasons)
        # intervention receipt of all three kinds: received, not received, not yet recorded
        kids = extract.children(db, users.resolve_actor(db, "admin"), as_of=AS_OF)
        got = kids.drop_duplicates("family_id")["intervention_received"]
        assert got.sum() > got.eq(False).sum() > 0 and got.isna().sum() > 0
        started = kids.loc[kids["intervention_received"].fillna(False).astype(bool)]
        lag = (started["intervention_started_on"] - started["randomised_on"]).dt.days
        assert lag.min() >= 0 and started["intervention_started_on"].max().date() <= AS_OF
        assert (
            kids.loc[
                kids["intervention_received"].eq(False).fillna(False).astype(bool),
                "intervention_not_received_reason",
            ]
            .notna()
            .all()
        )
        # a second build into the same database is refused
        with pytest.raises(AlreadyExists, match="already holds families"):
            build(empty_url)
    finally:
        db.dispose()


def _extracts(url: str) -> dict[str, pd.DataFrame]:
    db = Database(url)
    try:
        actor = users.resolve_actor(db, "unblinded_stat")
        return {
            "children": extract.children(db, actor, as_of=AS_OF),
            "permanence": extract.permanence(db, actor, as_of=AS_OF),
            "scores": extract.scores(db, actor, as_of=AS_OF),
        }
    finally:
        db.dispose()


@pytest.mark.sqlite_only
def test_same_seed_same_trial_other_seed_other_trial(backend: str, tmp_path: Path) -> None:
    assert backend == "sqlite"
    urls = [f"sqlite:///{tmp_path / name}.db" for name in ("a", "b", "c")]
    build(urls[0], 20, seed=11)
    build(urls[1], 20, seed=11)
    build(urls[2], 20, seed=12)
    a, b, c = (_extracts(u) for u in urls)
    for name in a:
        assert len(a[name]) > 0
        pd.testing.assert_frame_equal(a[name], b[name])
    assert not a["scores"].equals(c["scores"])
    assert not a["children"].equals(c["children"])


@pytest.mark.sqlite_only
def test_the_effects_move_sdq_and_time_to_permanence(backend: str, tmp_path: Path) -> None:
    """A large true SDQ effect shows in the 30-month scores; a large HR in permanence."""
    url = f"sqlite:///{tmp_path / 'e.db'}"
    build(url, 60, seed=3, effects=demo.Effects(sdq=-8.0, permanence_hr=4.0))
    data = _extracts(url)
    children = data["children"].set_index("child_id")
    sdq = data["scores"]
    sdq = sdq[(sdq["instrument"] == "sdq") & (sdq["scale"] == "total_difficulties")]
    sdq = sdq[sdq["timepoint"] != "baseline"]
    by_arm = sdq.assign(arm=children.loc[sdq["child_id"], "arm"].to_numpy()).groupby("arm")
    means = by_arm["score"].mean()
    assert means["NIM"] < means["SAU"] - 3
    perm = data["permanence"]
    perm = perm.assign(arm=children.loc[perm["child_id"], "arm"].to_numpy())
    reached = perm.groupby("arm")["event"].apply(lambda e: (e > 0).mean())
    assert reached["NIM"] > reached["SAU"]


def test_cli_demo_prints_a_summary_and_refuses_bad_effects(empty_url: str, tmp_path: Path) -> None:
    bad = run("demo", "--database", empty_url, "--families", "3", "--effect", "sdq")
    assert bad.exit_code != 0 and "expected sdq=NUMBER or permanence=NUMBER" in bad.output
    ok = run(
        "demo",
        "--database",
        empty_url,
        "--families",
        "8",
        "--as-of",
        AS_OF.isoformat(),
        "--effect",
        "sdq=-3",
        "--out",
        str(tmp_path / "reports"),
        "--json",
    )
    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.output)
    assert summary["families"] == 8 and summary["effects"] == {"sdq": -3.0, "permanence_hr": 1.3}
    assert summary["as_of"] == AS_OF.isoformat()
    # the build ends with a data freeze and both interim reports read from it
    assert summary["freeze"]["id"] == 1 and len(summary["freeze"]["content_sha256"]) == 64
    for kind in ("open", "closed"):
        html = tmp_path / "reports" / kind / "report.html"
        assert str(html) in summary["reports"][kind]
        assert "data freeze 1" in html.read_text(encoding="utf-8")


def test_back_dated_randomisation_must_be_aware_and_not_in_the_future(
    db: Database, actors: Actors
) -> None:
    from noim.services import consent

    coord = actors["coord_gla"]
    randomisation.setup(db, actors["admin"], 99)
    fam = family_with_children(db, coord, "GLA", (10,))
    child, family = fam.children[0].trial_id, fam.trial_id
    consent.decide_eligibility(db, coord, child, True, date(2024, 3, 5))
    consent.record_consent(db, coord, child, "local_authority", "v3", date(2024, 3, 5))
    for when in (datetime(2024, 3, 20, 10), datetime.now(UTC) + timedelta(days=2)):
        with pytest.raises(ValidationError) as exc:
            randomisation.randomise(db, coord, family, randomised_at=when)
        assert {p.rule for p in exc.value.problems} == {"RND-014"}
    at = datetime(2024, 3, 20, 10, tzinfo=UTC)
    view = randomisation.randomise(db, coord, family, randomised_at=at)
    assert view.randomised_at == at
