"""Blinding as a security property: a blinded role, acting as an attacker, recovers no arm.

The attacks are those of the issue 11 audit, run against a synthetic trial built through
the real services (``noim demo``), once per backend and shared read-only by the tests
of this module:

* **replaying the minimisation** from what ``noim audit show`` gives (the generator's
  starting state and every allocation's factors in sequence order): works for an
  unblinded reader, which shows the attack is real, and gets nothing to start from for
  the data manager;
* **guessing the seed** through the families' masked codes (they were once keyed by the
  seed): the masked codes no longer confirm any seed;
* **classifying families by their costs**: the blinded costs dataset (live and frozen)
  holds none of the services only one arm receives;
* **reading every path** a blinded role has (JSON outputs, audit histories, errors,
  datasets, the open report) for the seed, any generator state, the masking key, the
  arm-revealing services, or a key naming the allocation's sequence or factors.

A test per path; each would fail on the code before the fix.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.engine import make_url

from noim import extract
from noim.cli import noim_cli
from noim.db.models import (
    Allocation,
    Child,
    DataFreeze,
    Family,
    MaskingKey,
    RandomisationState,
    ServiceUse,
)
from noim.db.session import Database
from noim.domain.randomisation import minimise
from noim.domain.roles import Actor
from noim.domain.trialdef import builtin_definition, default_definition
from noim.services import audit, demo, economics, freezes, queries, randomisation, setup, users
from noim.services.audit import MASKED
from tests.conftest import BACKENDS, PgServer

pytestmark = pytest.mark.xdist_group("blinding_attacks")  # one worker builds the trials once

#: a distinctive seed: any output holding these digits leaks it
SEED = 73_194_268_551
AS_OF = date(2026, 6, 30)
BLINDED = ("datamanager", "statistician", "research_gla")
#: per-family words: a blinded reader who sees one of them next to a family knows its arm
ARM_WORDS = (
    "NIM",
    "SAU",
    "GIFT",
    "LIFT",
    "New Orleans",
    "Services as usual",
    "Enhanced social work",
    "nim_session",
    "Infant mental health team",
)
#: keys of JSON outputs that would hand over the allocation sequence
REPLAY_KEYS = {"sequence", "sequence_number", "factors", "rng_state", "seed", "list_position"}


@dataclass
class Demo:
    url: str
    db: Database
    arms: dict[str, str]  # family trial ID -> arm
    secrets: list[str]  # the seed, every generator state's numbers, the masking key

    def actor(self, name: str) -> Actor:
        return users.resolve_actor(self.db, name)

    def run(self, user: str, *args: str) -> Result:
        env: dict[str, str | None] = {"NOIM_DATABASE_URL": None, "NOIM_USER": None}
        return CliRunner().invoke(
            noim_cli, ["--database", self.url, "--user", user, *args], env=env
        )


def _build(url: str) -> Demo:
    demo.build_demo(url, default_definition(), 40, SEED, as_of=AS_OF)
    db = Database(url)
    with db.read() as s:
        arms = dict(
            s.execute(
                select(Family.trial_id, Allocation.arm_code).join(
                    Allocation, Allocation.family_id == Family.id
                )
            ).all()
        )
        state = s.scalar(select(RandomisationState.rng_state))
        key = s.scalar(select(MaskingKey.key_hex))
    admin = users.resolve_actor(db, "admin")
    history = audit.history(db, admin, "randomisation_state", "1")
    states = [json.loads(r.new)["rng_state"] for r in history if r.field is None]
    states += [json.loads(r.new) for r in history if r.field == "rng_state"]
    states.append(state)
    numbers = {str(v) for st in states for v in st["state"].values()}
    return Demo(url, db, arms, [str(SEED), key, *sorted(numbers)])


@pytest.fixture(scope="module", params=BACKENDS)
def trial(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Demo]:
    """A 40-family synthetic trial per backend, built once and only read by the tests."""
    chosen = request.config.getoption("--backend")
    if chosen not in ("all", request.param):
        pytest.skip(f"--backend {chosen}")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('attack') / 'noim.db'}"
        name = None
    else:
        pg: PgServer = request.getfixturevalue("pg_server")
        name = f"noim_t_{uuid.uuid4().hex[:12]}"
        url = pg.create(name)
    built = _build(url)
    yield built
    built.db.dispose()
    if name is not None:
        pg.drop(name)
        pg.created.remove(name)


@pytest.fixture
def scratch(trial: Demo, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Demo]:
    """A copy of the shared trial for a test that writes (the shared one is only read)."""
    trial.db.dispose()  # no open connection: PostgreSQL copies from an idle template
    if trial.url.startswith("sqlite"):
        target = tmp_path / "copy.db"
        shutil.copyfile(trial.url.split(":///", 1)[1], target)
        url, name = f"sqlite:///{target}", None
    else:
        pg: PgServer = request.getfixturevalue("pg_server")
        name = f"noim_t_{uuid.uuid4().hex[:12]}"
        url = pg.create(name, template=make_url(trial.url).database)
    copy = Demo(url, Database(url), trial.arms, trial.secrets)
    yield copy
    copy.db.dispose()
    if name is not None:
        pg.release(name)


def _leaks(text: str, secrets: list[str], words: tuple[str, ...] = ARM_WORDS) -> list[str]:
    found = [s for s in secrets if s in text]
    found += [w for w in words if re.search(rf"\b{re.escape(w)}\b", text, re.IGNORECASE)]
    return found


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


# --------------------------------------------------------------------------- replaying the sequence


def replay(
    history_state: list[audit.AuditRecord], allocations: list[audit.AuditRecord]
) -> dict[int, str]:
    """The audit's attack: from the generator's starting state and each allocation's factors
    in sequence order, run noim's own minimisation.  Returns allocation id -> arm; raises
    ``LookupError`` when the audit trail withholds what the replay needs."""
    definition = default_definition()
    rd = definition.randomisation
    arms = [a.code for a in definition.arms]
    ratios = {a.code: a.ratio for a in definition.arms}
    (first,) = [r for r in history_state if r.field is None]
    start = json.loads(first.new or "{}").get("rng_state")
    if not isinstance(start, dict):
        raise LookupError("the generator's starting state is withheld")
    rows = []
    for r in allocations:
        values = json.loads(r.new or "{}")
        if not isinstance(values.get("factors"), dict) or not isinstance(
            values.get("sequence_number"), int
        ):
            raise LookupError("the allocation's factors or sequence number are withheld")
        rows.append((values["sequence_number"], int(r.key), values["factors"]))
    bit = np.random.PCG64()
    bit.state = start
    rng = np.random.Generator(bit)
    counts: Counter[tuple[str, str, str]] = Counter()
    out = {}
    for _seq, key, factors in sorted(rows):
        levels = {f: factors[f] for f in rd.factors}
        arm = minimise(counts, levels, arms, ratios, rd.minimisation_probability, rng).arm
        for f, level in levels.items():
            counts[(f, level, arm)] += 1
        out[key] = arm
    return out


def _allocation_histories(trial: Demo, user: str) -> tuple[list[Any], list[Any]]:
    actor = trial.actor(user)
    with trial.db.read() as s:
        ids = s.scalars(select(Allocation.id).order_by(Allocation.id)).all()
    state = audit.history(trial.db, actor, "randomisation_state", "1")
    allocations = [
        r
        for i in ids
        for r in audit.history(trial.db, actor, "allocations", str(i))
        if r.field is None
    ]
    return state, allocations


def test_the_replay_attack_works_for_an_unblinded_reader(trial: Demo) -> None:
    """The attack is real: from the audit trail an unblinded reader replays every arm."""
    state, allocations = _allocation_histories(trial, "admin")
    replayed = replay(state, allocations)
    with trial.db.read() as s:
        truth = dict(s.execute(select(Allocation.id, Allocation.arm_code)).all())
    assert len(replayed) == 40 and replayed == truth


@pytest.mark.parametrize("user", ["datamanager"])
def test_a_blinded_reader_cannot_replay_the_allocations_from_the_audit(
    trial: Demo, user: str
) -> None:
    state, allocations = _allocation_histories(trial, user)
    with pytest.raises(LookupError):
        replay(state, allocations)
    text = json.dumps([r.__dict__ for r in state + allocations], default=str)
    assert _leaks(text, trial.secrets) == []
    for r in allocations:
        values = json.loads(r.new)
        for column in ("arm_code", "stratum", "factors", "sequence_number", "list_position"):
            assert values[column] == MASKED, column
    for r in state:
        if r.field is None:
            values = json.loads(r.new)
            assert values["seed"] == MASKED and values["rng_state"] == MASKED
        elif r.field == "rng_state":
            assert r.old in (None, MASKED) and r.new == MASKED


def test_the_masked_codes_confirm_no_guess_of_the_seed(trial: Demo) -> None:
    """Masked codes were a keyed digest of the seed: trying seeds against them found it.
    Now they are keyed by a secret drawn apart from the seed, so even the true seed (the
    attacker's lucky guess) matches none."""
    actor = trial.actor("statistician")
    children = extract.children(trial.db, actor, as_of=AS_OF)
    codes = dict(zip(children["family_id"], children["arm"], strict=True))

    def seed_keyed(seed: int, family: str) -> str:  # the old scheme
        digest = hashlib.sha256(f"noim-mask:{seed}:{family}".encode()).digest()
        return base64.b32encode(digest).decode()[:8]

    for guess in range(SEED - 3, SEED + 4):
        assert not any(seed_keyed(guess, f) == code for f, code in codes.items()), guess


def test_audit_histories_of_the_randomisation_tables_show_blinded_roles_no_secret(
    trial: Demo,
) -> None:
    with trial.db.read() as s:
        ids = s.scalars(select(Allocation.id)).all()
    for user in ("datamanager",):  # the blinded role that reads the audit trail
        for table, key in [
            ("randomisation_state", "1"),
            *(("allocations", str(i)) for i in ids[:5]),
        ]:
            out = trial.run(user, "audit", "show", "--table", table, "--key", key, "--json")
            assert out.exit_code == 0, out.output
            assert _leaks(out.output, trial.secrets) == [], (user, table, key)
            assert "NIM" not in out.output and "SAU" not in out.output


def test_the_block_method_sealed_list_is_masked_in_the_audit(empty_url: str) -> None:
    """Block method: the sealed list (arms, block sizes, positions) and the seed that
    regenerates it are masked for blinded roles in the audit trail."""
    setup.initialise(empty_url, builtin_definition("example"), "admin")
    db = Database(empty_url)
    try:
        admin = users.resolve_actor(db, "admin")
        users.add_user(db, admin, "dm", "data_manager", [])
        randomisation.generate_list(db, admin, seed=SEED, per_stratum=6)
        dm = users.resolve_actor(db, "dm")
        state = audit.history(db, dm, "randomisation_state", "1")
        assert _leaks(json.dumps([r.__dict__ for r in state], default=str), [str(SEED)]) == []
        seen = json.loads(audit.history(db, admin, "allocation_list", "1")[0].new or "")
        assert seen["arm_code"] != MASKED and seen["block_size"] in (3, 6)
        values = json.loads(audit.history(db, dm, "allocation_list", "1")[0].new or "")
        assert {k for k, v in values.items() if v == MASKED} == {
            "stratum",
            "position",
            "block_number",
            "block_size",
            "arm_code",
        }
    finally:
        db.dispose()


# --------------------------------------------------------------------------- costs and service use


def _best_split(values: pd.Series, truth: pd.Series) -> float:
    """Accuracy of the best one-threshold classifier of ``truth`` (two arms) by ``values``."""
    best = 0.0
    labels = sorted(truth.unique())
    for cut in sorted(set(values)):
        guess = np.where(values >= cut, labels[0], labels[1])
        acc = float((guess == truth.to_numpy()).mean())
        best = max(best, acc, 1 - acc)
    return best


def test_costs_do_not_classify_families_for_a_blinded_statistician(trial: Demo) -> None:
    stat = trial.actor("statistician")
    seen = extract.costs(trial.db, trial.actor("unblinded_stat"), as_of=AS_OF)
    truth = seen["arm"].astype(str)
    with_records = seen["n_records"] > 0
    # unfiltered, the costs give the arms away (the audit classified 389 of 390 families)
    assert _best_split(seen["n_records"][with_records], truth[with_records]) > 0.95
    assert (seen["arm_revealing_records"][truth == "NIM"] > 0).any()
    blind = extract.costs(trial.db, stat, as_of=AS_OF)
    assert blind["arm_revealing_records"].isna().all() and blind["arm_revealing_cost"].isna().all()
    assert _best_split(blind["n_records"][with_records], truth[with_records]) < 0.8
    # what the blinded statistician gets is exactly the cost of the other services
    expected = seen["total_cost"] - seen["arm_revealing_cost"]
    assert np.allclose(blind["total_cost"].to_numpy(), expected.to_numpy())


def test_a_freeze_gives_blinded_roles_the_blinded_costs(scratch: Demo) -> None:
    trial = scratch
    dm = trial.actor("datamanager")
    made = freezes.create_freeze(trial.db, dm, label="attack test")
    stat = trial.actor("statistician")
    frozen = extract.costs(trial.db, stat, freeze=made.id)
    live = extract.costs(trial.db, stat, as_of=made.as_of)
    pd.testing.assert_frame_equal(frozen, live)
    assert frozen["arm_revealing_cost"].isna().all()
    unblinded = extract.costs(trial.db, trial.actor("unblinded_stat"), freeze=made.id)
    assert (unblinded["arm_revealing_cost"].fillna(0) > 0).any()


def _nim_child(trial: Demo) -> tuple[str, int]:
    """A child of the intervention arm with a recorded arm-revealing service, and that
    record's id."""
    with trial.db.read() as s:
        row = s.execute(
            select(Child.trial_id, ServiceUse.id)
            .join(ServiceUse, ServiceUse.child_id == Child.id)
            .join(economics.UnitCost, economics.UnitCost.id == ServiceUse.unit_cost_id)
            .where(economics.UnitCost.code == "nim_session")
            .order_by(ServiceUse.id)
            .limit(1)
        ).one()
    return str(row[0]), int(row[1])


def test_service_use_lists_hide_the_arm_revealing_services(trial: Demo) -> None:
    child, _use = _nim_child(trial)
    coordinator = economics.list_service_use(trial.db, trial.actor("admin"), child)
    assert any(r.unit_cost == "nim_session" for r in coordinator.rows)
    research = "research_gla" if child.startswith("G") else "research_cro"
    for user in ("datamanager", "statistician", research):
        out = trial.run(user, "service-use", "list", child, "--json")
        assert out.exit_code == 0, out.output
        assert _leaks(out.output, trial.secrets) == [], user
        report = economics.list_service_use(trial.db, trial.actor(user), child)
        assert [r.unit_cost for r in report.rows] == ["sw_hour"]
        assert sum(report.totals.values()) == sum(r.cost for r in report.rows)


def test_a_hidden_service_use_record_is_refused_as_if_it_did_not_exist(trial: Demo) -> None:
    child, use = _nim_child(trial)
    with trial.db.read() as s:
        missing = (s.scalar(select(ServiceUse.id).order_by(ServiceUse.id.desc())) or 0) + 1000
    research = "research_gla" if child.startswith("G") else "research_cro"
    # the audit trail: an empty history, as for a key that does not exist
    for user in ("datamanager",):
        hidden = trial.run(
            user, "audit", "show", "--table", "service_use", "--key", str(use), "--json"
        )
        absent = trial.run(
            user, "audit", "show", "--table", "service_use", "--key", str(missing), "--json"
        )
        assert hidden.exit_code == absent.exit_code == 0
        assert json.loads(hidden.output) == json.loads(absent.output) == []
    # voiding: the same refusal as for a record that does not exist
    hidden = trial.run(research, "void", "service_use", str(use), "--reason", "test")
    absent = trial.run(research, "void", "service_use", str(missing), "--reason", "test")
    assert hidden.exit_code == absent.exit_code == 1
    assert hidden.output.replace(str(use), "N") == absent.output.replace(str(missing), "N")
    # a data query on it: refused as for a record that does not exist
    args = ("queries", "raise", "--table", "service_use", "--message", "check")
    hidden = trial.run("datamanager", *args, "--key", str(use))
    absent = trial.run("datamanager", *args, "--key", str(missing))
    assert hidden.exit_code == absent.exit_code == 1
    assert hidden.output.replace(str(use), "N") == absent.output.replace(str(missing), "N")


def test_blinded_roles_cannot_record_an_arm_revealing_service(trial: Demo) -> None:
    child, _use = _nim_child(trial)
    research = "research_gla" if child.startswith("G") else "research_cro"
    out = trial.run(
        research,
        "service-use",
        "add",
        child,
        "--unit-cost",
        "nim_session",
        "--from",
        "2025-01-01",
        "--to",
        "2025-02-01",
        "--quantity",
        "1",
    )
    assert out.exit_code == 1 and "SRV-014" in out.output, out.output


def test_a_query_on_a_hidden_service_use_record_is_not_shown_to_blinded_roles(
    scratch: Demo,
) -> None:
    trial = scratch
    child, use = _nim_child(trial)
    coord = "coord_gla" if child.startswith("G") else "coord_cro"
    raised = queries.raise_query(
        trial.db, trial.actor(coord), "service_use", str(use), "Are 20 sessions right?"
    )
    shown = trial.run("datamanager", "queries", "list", "--json")
    assert raised.id not in [q["id"] for q in json.loads(shown.output)]
    detail = trial.run("datamanager", "queries", "show", str(raised.id))
    absent = trial.run("datamanager", "queries", "show", str(raised.id + 1000))
    assert detail.exit_code == absent.exit_code == 1
    assert detail.output.replace(str(raised.id), "N") == absent.output.replace(
        str(raised.id + 1000), "N"
    )
    seen = trial.run(coord, "queries", "list", "--json")
    assert raised.id in [q["id"] for q in json.loads(seen.output)]


# --------------------------------------------------------------------------- every read path


def _family_and_children(trial: Demo, arm: str, n: int) -> list[tuple[str, list[str]]]:
    with trial.db.read() as s:
        rows = s.execute(
            select(Family.trial_id, Child.trial_id)
            .join(Child, Child.family_id == Family.id)
            .join(Allocation, Allocation.family_id == Family.id)
            .where(Allocation.arm_code == arm)
            .order_by(Family.trial_id, Child.trial_id)
        ).all()
    out: dict[str, list[str]] = {}
    for f, c in rows:
        out.setdefault(f, []).append(c)
    return list(out.items())[:n]


def test_no_blinded_json_output_holds_an_arm_or_a_replay_handle(trial: Demo) -> None:
    """Every read command a blinded role has, on families of both arms: no secret, no arm
    word, no key naming the sequence or factors."""
    picked = _family_and_children(trial, "NIM", 3) + _family_and_children(trial, "SAU", 3)
    for user in BLINDED:
        commands: list[tuple[str, ...]] = [
            ("family", "list"),
            ("followups", "due", "--within", "3650"),
            ("queries", "list"),
            ("sae", "list"),
            ("deviation", "list"),
            ("screening", "list"),
            ("freeze", "list"),
        ]
        for family, kids in picked:
            if user == "research_gla" and not family.startswith("G"):
                continue
            commands += [("family", "show", family), ("parent", "list", family)]
            for child in kids:
                commands += [
                    ("visit", "list", child),
                    ("placement", "list", child),
                    ("legal", "list", child),
                    ("child", "carers", child),
                    ("service-use", "list", child),
                ]
                if user == "datamanager":
                    commands += [("audit", "show", "--table", "children", "--key", child)]
            if user == "datamanager":
                commands += [("audit", "show", "--table", "families", "--key", family)]
        if user == "research_gla":  # researchers neither read freezes nor other sites
            commands.remove(("freeze", "list"))
        for command in commands:
            out = trial.run(user, *command, "--json")
            assert out.exit_code == 0, (user, command, out.output)
            assert _leaks(out.output, trial.secrets) == [], (user, command)
            assert not (_keys(json.loads(out.output)) & REPLAY_KEYS), (user, command)


def test_errors_tell_a_blinded_role_nothing_of_the_arm(trial: Demo) -> None:
    ((family, _kids),) = _family_and_children(trial, "NIM", 1)
    attempts = [
        ("randomisation", "list"),
        ("randomisation", "balance"),
        ("randomise", family),
        ("intervention", "show", family),
        ("intervention", "list"),
        ("report", "interim", "--closed", "--out", "/tmp/never"),
    ]
    for user in BLINDED:
        for attempt in attempts:
            out = trial.run(user, *attempt)
            assert out.exit_code != 0, (user, attempt)
            assert _leaks(out.output, trial.secrets) == [], (user, attempt, out.output)


def test_the_open_report_holds_no_replay_handle(trial: Demo, tmp_path: Path) -> None:
    out = trial.run(
        "datamanager", "report", "interim", "--open", "--out", str(tmp_path), "--format", "html"
    )
    assert out.exit_code == 0, out.output
    for path in tmp_path.rglob("*"):
        if path.suffix in {".html", ".csv", ".json", ".md"}:
            text = path.read_text(encoding="utf-8")
            assert (
                _leaks(text, trial.secrets, ("nim_session", "Infant mental health team")) == []
            ), path


def test_blinded_datasets_hold_no_replay_handle(trial: Demo) -> None:
    stat = trial.actor("statistician")
    for name in ("children", "permanence", "scores", "placements", "reentries", "costs"):
        df = getattr(extract, name)(trial.db, stat, as_of=AS_OF)
        text = df.to_csv(index=False)
        assert _leaks(text, trial.secrets, ("nim_session", "Infant mental health team")) == [], name
        assert not (set(df.columns) & REPLAY_KEYS), name
        assert not (set(df["arm"]) & {"NIM", "SAU"}) and df["arm_masked"].all(), name


def test_free_text_naming_an_arm_is_masked_in_audit_histories(scratch: Demo) -> None:
    """A coordinator's reason that names the team is masked for the data manager (and
    kept as typed for roles that see the arm)."""
    trial = scratch
    ((family, kids),) = _family_and_children(trial, "NIM", 1)
    coord = "coord_gla" if family.startswith("G") else "coord_cro"
    team = "GIFT" if family.startswith("G") else "LIFT"
    reason = f"the {team} team's records give another sex"
    out = trial.run(coord, "child", "correct", kids[0], "--sex", "unknown", "--reason", reason)
    assert out.exit_code == 0, out.output
    blind = trial.run(
        "datamanager", "audit", "show", "--table", "children", "--key", kids[0], "--json"
    )
    assert blind.exit_code == 0, blind.output
    assert team not in blind.output and "[arm masked]" in blind.output
    seen = trial.run("admin", "audit", "show", "--table", "children", "--key", kids[0], "--json")
    assert reason in seen.output


def test_free_text_naming_an_arm_is_masked_in_lists(scratch: Demo) -> None:
    """A deviation whose description names the family's team: masked in the blinded
    lists, as typed for the coordinator."""
    trial = scratch
    ((family, _kids),) = _family_and_children(trial, "NIM", 1)
    coord = "coord_gla" if family.startswith("G") else "coord_cro"
    team = "GIFT" if family.startswith("G") else "LIFT"
    out = trial.run(
        coord,
        "deviation",
        "add",
        family,
        "--on",
        "2026-01-05",
        "--category",
        "other",
        "--severity",
        "minor",
        "--description",
        f"{team} session held before consent",
    )
    assert out.exit_code == 0, out.output
    blind = trial.run("datamanager", "deviation", "list", "--json")
    assert (
        blind.exit_code == 0 and team not in blind.output and "[arm masked] session" in blind.output
    )
    seen = trial.run(coord, "deviation", "list", "--json")
    assert f"{team} session held before consent" in seen.output


def test_freeze_hashes_do_not_let_a_blinded_reader_test_arm_codings(
    db: Database, actors: Any
) -> None:
    """A small trial's frozen dataset: a blinded reader knows every column but the arm, so
    without the freeze's secret salt they could hash each possible arm coding and compare
    with the dataset hash ``noim freeze show`` gives them.  With the salt, nothing matches;
    the same search with the salt (which only the database holds) finds the real arms."""
    from itertools import product

    from noim.extract import _frozen
    from tests.factories import small_trial

    trial = small_trial(db, actors, n_families=6)
    made = freezes.create_freeze(db, actors["datamanager"], label="small")
    stat = actors["statistician"]
    shown = {d.name: d.sha256 for d in freezes.show_freeze(db, stat, made.id).datasets}
    blind = extract.placements(db, stat, freeze=made.id)
    families = sorted(set(blind["family_id"]))
    assert len(families) == 6

    def codings(salt: str | None) -> list[dict[str, str]]:
        found = []
        for arms in product(("NIM", "SAU"), repeat=len(families)):
            guess = dict(zip(families, arms, strict=True))
            candidate = blind.assign(
                arm=blind["family_id"].map(guess).astype("string"), arm_masked=False
            )
            if _frozen.encode(candidate, salt)[1] == shown["placements"]:
                found.append(guess)
        return found

    assert codings(None) == []  # the hash shown is salted: no coding matches
    with db.read() as s:
        salt = s.scalar(select(DataFreeze.salt).where(DataFreeze.id == made.id))
    assert codings(salt) == [{f: trial.arms[f] for f in families}]  # the attack is real
    out = CliRunner().invoke(
        noim_cli,
        [
            "--database",
            str(db.engine.url.render_as_string(hide_password=False)),
            "--user",
            "datamanager",
            "audit",
            "show",
            "--table",
            "data_freezes",
            "--key",
            str(made.id),
            "--json",
        ],
        env={"NOIM_DATABASE_URL": None, "NOIM_USER": None},
    )
    assert out.exit_code == 0 and salt not in out.output and MASKED in out.output
