"""Commands for setting up and running a noim database: init, db, users, trial, audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from noim.cli import commands
from noim.cli.common import (
    CliState,
    json_option,
    pass_state,
    print_json,
    print_table,
)
from noim.cli.lazy import LazyGroup
from noim.config import Settings, os_user
from noim.domain.codes import JURISDICTION_LABELS
from noim.domain.roles import Capability
from noim.domain.trialdef import TrialDefinition, load_definition
from noim.services import setup, users

# --------------------------------------------------------------------------- init


@click.command()
@click.option(
    "--database",
    "database_opt",
    metavar="URL",
    help="Database to create (same as the global --database).",
)
@click.option(
    "--trial",
    "trial_file",
    metavar="FILE",
    default="nim",
    show_default=True,
    help="Trial definition: a TOML file, or a built-in name (nim, example).",
)
@click.option(
    "--admin", metavar="NAME", help="Name of the first administrator (default: your login name)."
)
@json_option
@pass_state
def init(
    state: CliState, database_opt: str | None, trial_file: str, admin: str | None, as_json: bool
) -> None:
    """Create a noim database: schema, trial definition and the first administrator."""
    definition = load_definition(trial_file)
    settings = Settings.resolve(database=database_opt or state.database)
    admin_name = admin or os_user()
    result = setup.initialise(settings.database_url, definition, admin_name)
    if as_json:
        print_json(result)
        return
    click.echo(f"Initialised {result.short_name} ({result.trial_code}) in {settings.database_url}")
    click.echo(f"Schema revision {result.schema_revision}; sites: {', '.join(result.sites)}")
    click.echo(
        f"Administrator: {result.admin_name}  (act as them with --user {result.admin_name} or NOIM_USER)"
    )


# --------------------------------------------------------------------------- db


@click.group(cls=LazyGroup, lazy=commands.DB)
def db() -> None:
    """Schema migrations and database status."""


@db.command("upgrade")
@pass_state
def db_upgrade(state: CliState) -> None:
    """Upgrade the database schema to this version of noim (back it up first)."""
    from noim.db import migrate  # Alembic: only the db commands need it

    database = state.db(check_schema=False)
    before = migrate.require_upgradable(database.engine)
    actor = users.resolve_actor(database, state.settings.user_name)
    actor.require(Capability.ADMINISTER, "upgrade the database schema")
    migrate.upgrade(database.url)
    added = setup.sync_reference_data_as(database, actor)
    after, _ = migrate.status(database.engine)
    if before == after:
        click.echo(
            f"Already at revision {after} (head); reference data: {added} row(s) added or changed"
        )
    else:
        click.echo(
            f"Upgraded from revision {before} to {after}; reference data: {added} row(s) added or changed"
        )


@db.command("current")
@json_option
@pass_state
def db_current(state: CliState, as_json: bool) -> None:
    """Show the database's schema revision and whether it matches this noim."""
    from noim.db import migrate  # Alembic: only the db commands need it

    database = state.db(check_schema=False)
    current, code_head = migrate.status(database.engine)
    info = {
        "database": database.engine.url.render_as_string(hide_password=True),
        "revision": current,
        "head": code_head,
        "up_to_date": current == code_head,
        "newer_than_this_noim": current is not None and current not in migrate.known_revisions(),
    }
    if as_json:
        print_json(info)
        return
    state_text = (
        "up to date"
        if current == code_head
        else "NEWER than this noim: upgrade noim"
        if info["newer_than_this_noim"]
        else "BEHIND: run `noim db upgrade`"
        if current
        else "no schema"
    )
    click.echo(
        f"{info['database']}: revision {current or '(none)'}; noim head {code_head} ({state_text})"
    )


@db.command("check")
@json_option
@pass_state
def db_check(state: CliState, as_json: bool) -> None:
    """Compare the database schema with noim's models (like `alembic check`)."""
    from noim.db import migrate  # Alembic: only the db commands need it

    database = state.db(check_schema=False)
    current, code_head = migrate.status(database.engine)
    with database.engine.connect() as conn:
        diffs = [repr(d) for d in migrate.schema_diffs(conn)]
    ok = current == code_head and not diffs
    if as_json:
        print_json({"revision": current, "head": code_head, "differences": diffs, "ok": ok})
    else:
        click.echo(f"revision {current or '(none)'}, head {code_head}")
        for d in diffs:
            click.echo(f"  difference: {d}")
        click.echo("schema matches the models" if ok else "schema does NOT match the models")
        if current is not None and current not in migrate.known_revisions():
            click.echo(f"revision {current} is newer than this noim: upgrade noim")
    if not ok:
        raise click.exceptions.Exit(1)


@db.command("tables")
@json_option
@pass_state
def db_tables(state: CliState, as_json: bool) -> None:
    """Row counts of every noim table."""
    from noim.db import migrate  # Alembic: only the db commands need it

    state.actor()  # must be a known user
    counts = migrate.table_counts(state.db().engine)
    if as_json:
        print_json(counts)
        return
    print_table("Tables", ["table", "rows"], sorted(counts.items()))


# --------------------------------------------------------------------------- users


@click.group("users", cls=LazyGroup, lazy=commands.USERS)
def users_group() -> None:
    """Users, roles and site memberships (administrators)."""


@users_group.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    help="administrator, coordinator, researcher, data_manager, statistician, unblinded_statistician or dmc_member.",
)
@click.option(
    "--site",
    "sites",
    multiple=True,
    metavar="SITE",
    help="Site code (repeat for several); coordinators and researchers need one.",
)
@click.option("--display-name", help="Full name shown in listings.")
@json_option
@pass_state
def users_add(
    state: CliState,
    name: str,
    role: str,
    sites: tuple[str, ...],
    display_name: str | None,
    as_json: bool,
) -> None:
    """Add user NAME with a role (and sites) and a one-time password, printed once.

    Give the password to the user by a safe channel; they choose their own at first login.
    """
    from dataclasses import asdict

    from noim.services import auth

    info, password = auth.add_user(state.db(), state.actor(), name, role, sites, display_name)
    if as_json:
        print_json({**asdict(info), "one_time_password": password})
    else:
        where = f" at {', '.join(info.sites)}" if info.sites else ""
        click.echo(f"Added {info.name} ({info.role}{where})")
        click.echo(f"One-time password (shown once; changed at first login): {password}")


@users_group.command("list")
@json_option
@pass_state
def users_list(state: CliState, as_json: bool) -> None:
    """List users with their roles and sites."""
    rows = users.list_users(state.db(), state.actor())
    if as_json:
        print_json(rows)
        return
    print_table(
        "Users",
        ["name", "role", "sites", "active", "display name"],
        [
            (
                u.name,
                u.role,
                ", ".join(u.sites) or "all",
                "yes" if u.active else "no",
                u.display_name,
            )
            for u in rows
        ],
    )


@users_group.command("update")
@click.argument("name")
@click.option("--role", help="New role.")
@click.option("--add-site", multiple=True, metavar="SITE", help="Add a site membership.")
@click.option("--remove-site", multiple=True, metavar="SITE", help="End a site membership.")
@click.option("--active/--inactive", default=None, help="Reactivate or deactivate the user.")
@click.option("--display-name", help="New display name.")
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@json_option
@pass_state
def users_update(
    state: CliState,
    name: str,
    role: str | None,
    add_site: tuple[str, ...],
    remove_site: tuple[str, ...],
    active: bool | None,
    display_name: str | None,
    reason: str,
    as_json: bool,
) -> None:
    """Change user NAME's role, sites or status (audited)."""
    info = users.update_user(
        state.db(),
        state.actor(),
        name,
        reason,
        role=role,
        add_sites=add_site,
        remove_sites=remove_site,
        active=active,
        display_name=display_name,
    )
    if as_json:
        print_json(info)
    else:
        click.echo(
            f"Updated {info.name}: {info.role}, sites {', '.join(info.sites) or 'all'}, "
            f"{'active' if info.active else 'inactive'}"
        )


# --------------------------------------------------------------------------- trial


@click.group("trial")
def trial_group() -> None:
    """The trial definition."""


def definition_summary(d: TrialDefinition) -> dict[str, Any]:
    return {
        "code": d.trial.code,
        "short_name": d.trial.short_name,
        "title": d.trial.title,
        "registration": d.trial.registration,
        "target_families": d.trial.target_families,
        "definition_sha256": d.sha256,
        "sites": [
            {
                "code": s.code,
                "name": s.name,
                "jurisdiction": s.jurisdiction,
                "id_prefix": s.id_prefix,
                "target_families": s.target_families,
                "requires_care_proceedings": s.requires_care_proceedings,
                "local_authorities": [
                    {"code": la.code, "name": la.name} for la in s.local_authorities
                ],
                "teams": [
                    {"code": t.code, "name": t.name, "kind": t.kind, "arm": t.arm} for t in s.teams
                ],
            }
            for s in d.sites
        ],
        "arms": [
            {
                "code": a.code,
                "name": a.name,
                "ratio": a.ratio,
                "labels": a.labels,
                "control": a.control,
            }
            for a in d.arms
        ],
        "randomisation": {
            "unit": d.randomisation.unit,
            "method": d.randomisation.method,
            "stratify_by": list(d.randomisation.stratify_by),
            "factors": list(d.randomisation.factors),
            "minimisation_probability": d.randomisation.minimisation_probability,
            "block_sizes": list(d.randomisation.block_sizes),
        },
        "factors": [
            {
                "code": f.code,
                "label": f.label,
                "source": f.source,
                "levels": [{"code": lv.code, "label": lv.label, "max": lv.max} for lv in f.levels],
            }
            for f in d.factors
        ],
        "timepoints": [
            {
                "code": t.code,
                "label": t.label,
                "anchor": t.anchor,
                "offset": str(t.offset),
                "window": [str(t.window_start), str(t.window_end)],
                "instruments": [
                    {
                        "instrument": i.instrument,
                        "respondent": i.respondent,
                        "min_age_months": i.min_age_months,
                        "max_age_months": i.max_age_months,
                        "required": i.required,
                    }
                    for i in t.instruments
                ],
            }
            for t in d.timepoints
        ],
    }


def print_definition(d: TrialDefinition, blinded: bool = False) -> None:
    t = d.trial
    click.echo(f"{t.short_name} ({t.code}), registered {t.registration}")
    click.echo(f"  {t.title}")
    if t.target_families:
        click.echo(f"  target: {t.target_families} families")
    print_table(
        "Sites",
        ["site", "name", "jurisdiction", "ID prefix", "target", "local authorities"],
        [
            (
                s.code,
                s.name,
                JURISDICTION_LABELS[s.jurisdiction],
                s.id_prefix,
                s.target_families,
                ", ".join(f"{la.name} ({la.code})" for la in s.local_authorities),
            )
            for s in d.sites
        ],
    )
    print_table(
        "Arms",
        ["arm", "name", "ratio", "local names", "control"],
        [
            (
                a.code,
                a.name,
                a.ratio,
                "; ".join(f"{k}: {v}" for k, v in a.labels.items()),
                "yes" if a.control else "",
            )
            for a in d.arms
        ],
    )
    r = d.randomisation
    detail = (
        f"P(minimising arm) = {r.minimisation_probability}"
        if r.method == "minimisation"
        else f"block sizes {', '.join(map(str, r.block_sizes))}"
    )
    click.echo(
        f"Randomisation: unit {r.unit}, {r.method} ({detail}); strata: {', '.join(r.stratify_by)}; "
        f"factors: {', '.join(r.factors)}"
    )
    print_table(
        "Timepoints",
        ["timepoint", "anchor", "target", "window", "instruments (respondent, ages in months)"],
        [
            (
                tp.code,
                tp.anchor,
                f"+{tp.offset}",
                f"{tp.window_start} to {tp.window_end}",
                "; ".join(
                    f"{i.instrument} ({i.respondent}, {i.min_age_months or 0}-{i.max_age_months or ''})"
                    for i in tp.instruments
                ),
            )
            for tp in d.timepoints
        ],
    )


@trial_group.command("show")
@json_option
@pass_state
def trial_show(state: CliState, as_json: bool) -> None:
    """Show the trial definition this database was initialised with."""
    database = state.db()
    state.actor()
    with database.read() as s:
        definition = setup.stored_definition(s)
    if as_json:
        print_json(definition_summary(definition))
    else:
        print_definition(definition)


@trial_group.command("validate")
@click.argument("file")
@json_option
def trial_validate(file: str, as_json: bool) -> None:
    """Check a trial definition FILE without touching any database."""
    definition = load_definition(file)
    if as_json:
        print_json(definition_summary(definition))
    else:
        click.echo(
            f"{file}: valid ({definition.trial.short_name}, {len(definition.sites)} sites, "
            f"{len(definition.arms)} arms, {len(definition.timepoints)} timepoints)"
        )


# --------------------------------------------------------------------------- audit


@click.group("audit", cls=LazyGroup, lazy=commands.AUDIT)
def audit_group() -> None:
    """The audit trail: verify it, anchor it, read a record's history."""


@audit_group.command("verify")
@click.option(
    "--chain-only", is_flag=True, help="Check the hash chain only, not the data against it."
)
@click.option(
    "--anchor",
    "anchor_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Also check that the row anchored in FILE (`noim audit anchor`) still has its hash: "
    "no history up to it was rewritten.",
)
@json_option
@pass_state
def audit_verify(
    state: CliState, chain_only: bool, anchor_file: Path | None, as_json: bool
) -> None:
    """Verify the audit trail's hash chain and that the data agree with it (exit 1 if not)."""
    from noim.services import anchors
    from noim.services import audit as audit_service

    anchor = None
    if anchor_file is not None:
        anchor = anchors.parse(anchor_file.read_text(encoding="utf-8"), str(anchor_file))
    result = audit_service.verify(
        state.db(), state.actor(), check_data=not chain_only, anchor=anchor
    )
    if as_json:
        print_json(
            {
                "ok": result.ok,
                "chain": {
                    "ok": result.chain.ok,
                    "rows": result.chain.rows,
                    "first_bad_seq": result.chain.first_bad_seq,
                    "last_hash": result.chain.last_hash,
                    "problem": result.chain.problem,
                },
                "data": None
                if result.data is None
                else {
                    "ok": result.data.ok,
                    "tables": result.data.tables,
                    "rows": result.data.rows,
                    "problems": result.data.problems,
                    "total_problems": result.data.total_problems,
                },
                "freezes": None
                if result.freezes is None
                else {
                    "ok": all(f.ok for f in result.freezes),
                    "checked": len(result.freezes),
                    "failed": [
                        {"id": f.freeze_id, "label": f.label, "problems": list(f.problems)}
                        for f in result.freezes
                        if not f.ok
                    ],
                },
                "anchor": None
                if result.anchor is None
                else {
                    "ok": result.anchor.ok,
                    "file": str(anchor_file),
                    "seq": result.anchor.anchor.seq,
                    "hash": result.anchor.anchor.hash,
                    "anchored_at": result.anchor.anchor.anchored_at,
                    "problem": result.anchor.problem,
                },
            }
        )
    else:
        if result.chain.ok:
            click.echo(f"audit chain intact: {result.chain.rows} rows")
        else:
            click.echo(
                f"AUDIT CHAIN BROKEN at row {result.chain.first_bad_seq}: {result.chain.problem}"
            )
        if result.anchor is not None:
            a = result.anchor.anchor
            if result.anchor.ok:
                click.echo(
                    f"anchor {anchor_file} ({a.anchored_at}): audit row {a.seq} still has "
                    "the anchored hash"
                )
            else:
                click.echo(f"ANCHOR {anchor_file} NOT MATCHED: {result.anchor.problem}")
        if result.data is not None:
            if result.data.ok:
                click.echo(
                    f"data agree with the audit trail: {result.data.rows} rows in {result.data.tables} tables"
                )
            else:
                click.echo(
                    f"DATA DISAGREE WITH THE AUDIT TRAIL: {result.data.total_problems} problem(s)"
                )
                for p in result.data.problems:
                    click.echo(f"  {p}")
        if result.freezes is not None:
            failed = [f for f in result.freezes if not f.ok]
            if not failed:
                click.echo(
                    f"data freezes intact: {len(result.freezes)} match their hashes and the "
                    "audit trail"
                )
            else:
                click.echo(
                    f"DATA FREEZES FAIL VERIFICATION: {len(failed)} of {len(result.freezes)}"
                )
                for f in failed:
                    click.echo(f"  {f.describe()}: {'; '.join(f.problems)}")
    if not result.ok:
        raise click.exceptions.Exit(1)


@audit_group.command("show")
@click.option("--table", required=True, help="Table name, e.g. children (see docs/data-model.md).")
@click.option(
    "--key", required=True, help="Row key (the id), or a trial ID for families and children."
)
@json_option
@pass_state
def audit_show(state: CliState, table: str, key: str, as_json: bool) -> None:
    """List one record's history: who changed what, when, from what, to what, and why."""
    from noim.services import audit as audit_service

    rows = audit_service.history(state.db(), state.actor(), table, key)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(f"no audit rows for {table} {key}")
        return
    label = key if key == rows[0].key else f"{key} (row {rows[0].key})"
    click.echo(f"History of {table} {label}: {len(rows)} audit row(s)")
    for r in rows:
        when = r.recorded_at.strftime("%Y-%m-%d %H:%M:%S")
        change = f"{r.new}" if r.action == "insert" else f"{r.field}: {r.old} -> {r.new}"
        why = f"  (reason: {r.reason})" if r.reason else ""
        click.echo(f"  #{r.seq} {when} UTC  {r.user} ({r.role})  {r.action}  {change}{why}")
