"""Commands for randomisation (eligibility, consent and withdrawal: ``noim.cli.consent``)."""

from __future__ import annotations

from pathlib import Path

import click

from noim.cli.common import CliState, json_option, pass_state, print_json, print_table
from noim.domain.randomisation_sim import simulate_trial
from noim.domain.trialdef import load_definition
from noim.services import randomisation
from noim.services.randomisation_batch import randomise_file


def _parse_factors(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: expected NAME=LEVEL", param_hint="--factor")
        name, level = item.split("=", 1)
        out[name.strip()] = level.strip()
    return out


@click.command("randomise")
@click.argument("family_id", required=False)
@click.option(
    "--factor",
    "factors",
    multiple=True,
    metavar="NAME=LEVEL",
    help="A declared stratification factor's level (repeat for several).",
)
@click.option(
    "--batch",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Randomise every family of this CSV file (column family_id, and one column per "
    "declared factor), in file order, all or none.",
)
@json_option
@pass_state
def randomise_command(
    state: CliState,
    family_id: str | None,
    factors: tuple[str, ...],
    batch: Path | None,
    as_json: bool,
) -> None:
    """Randomise FAMILY_ID (all its children), or every family of --batch FILE.

    Prints the arm and sequence number.  A batch gives each family the allocation it
    would get randomised alone in file order; when any family cannot be randomised,
    every problem is listed and no family is randomised.
    """
    if (family_id is None) == (batch is None):
        raise click.UsageError("give FAMILY_ID or --batch FILE (one of them)")
    if batch is not None:
        if factors:
            raise click.UsageError("--factor is for one family; give factors as file columns")
        views = randomise_file(state.db(), state.actor(), batch)
    else:
        assert family_id is not None
        views = [
            randomisation.randomise(state.db(), state.actor(), family_id, _parse_factors(factors))
        ]
    if as_json:
        print_json(views[0] if batch is None else views)
        return
    for view in views:
        click.echo(
            f"Family {view.family} randomised to {view.arm} ({view.arm_label}), sequence {view.sequence}, "
            f"{view.randomised_at:%Y-%m-%d %H:%M} UTC; children: {', '.join(view.children)}"
        )


@click.group("randomisation")
def randomisation_group() -> None:
    """Randomisation set-up, allocations, balance, the sealed list and simulations."""


def _warn_weak(seed: int) -> None:
    if randomisation.weak_seed(seed):
        click.echo(
            f"warning: seed {seed} is below 2^40 and could be found by trying every seed; whoever "
            "finds it can replay every allocation.  For a real trial use a large random seed, "
            "e.g. `python3 -c 'import secrets; print(secrets.randbits(62))'`, and keep it "
            "outside the database",
            err=True,
        )


@randomisation_group.command("setup")
@click.option(
    "--seed",
    type=int,
    required=True,
    help="Seed of the minimisation generator: large, random and secret (it replays every allocation).",
)
@pass_state
def randomisation_setup(state: CliState, seed: int) -> None:
    """Fix the minimisation generator's seed (administrators; once)."""
    method = randomisation.setup(state.db(), state.actor(), seed)
    _warn_weak(seed)
    click.echo(
        f"Randomisation set up: {method}; the generator's state is stored after every allocation"
    )


@randomisation_group.command("list")
@json_option
@pass_state
def randomisation_list(state: CliState, as_json: bool) -> None:
    """List allocations (unblinded roles; coordinators see their own sites)."""
    rows = randomisation.list_allocations(state.db(), state.actor())
    if as_json:
        print_json(
            [
                {
                    "family": r.family,
                    "site": r.site,
                    "arm": r.arm,
                    "sequence": r.sequence,
                    "randomised_at": r.randomised_at,
                    "children": list(r.children),
                }
                for r in rows
            ]
        )
        return
    print_table(
        f"Allocations ({len(rows)})",
        ["seq", "family", "site", "arm", "randomised (UTC)", "children"],
        [
            (
                r.sequence,
                r.family,
                r.site,
                f"{r.arm} ({r.arm_label})",
                f"{r.randomised_at:%Y-%m-%d %H:%M}",
                ", ".join(r.children),
            )
            for r in rows
        ],
    )


@randomisation_group.command("balance")
@json_option
@pass_state
def randomisation_balance(state: CliState, as_json: bool) -> None:
    """Families per arm overall, by site and by each factor level, with the imbalance."""
    rows = randomisation.balance(state.db(), state.actor())
    if as_json:
        print_json(rows)
        return
    arms = list(rows[0].counts) if rows else []
    print_table(
        "Balance",
        ["factor", "level", *arms, "imbalance"],
        [(r.factor, r.level, *(r.counts[a] for a in arms), f"{r.imbalance:g}") for r in rows],
    )


@randomisation_group.command("generate-list")
@click.option(
    "--seed",
    type=int,
    required=True,
    help="Seed of the list: large, random and secret (it regenerates the list).",
)
@click.option(
    "--per-stratum",
    type=int,
    default=200,
    show_default=True,
    help="Slots to generate in each stratum.",
)
@json_option
@pass_state
def randomisation_generate_list(
    state: CliState, seed: int, per_stratum: int, as_json: bool
) -> None:
    """Generate and seal the block list (block method; administrators; once)."""
    slots, digest = randomisation.generate_list(state.db(), state.actor(), seed, per_stratum)
    _warn_weak(seed)
    if as_json:
        print_json({"slots": slots, "sha256": digest})
    else:
        click.echo(
            f"Sealed allocation list: {slots} slots; SHA-256 {digest} (checked at every allocation)"
        )


@randomisation_group.command("verify-list")
@json_option
@pass_state
def randomisation_verify_list(state: CliState, as_json: bool) -> None:
    """Check the sealed list's hash and that every allocation matches it in order (exit 1 if not)."""
    check = randomisation.verify_list(state.db(), state.actor())
    if as_json:
        print_json(check)
    else:
        click.echo(
            f"{'OK' if check.ok else 'FAILED'}: {check.allocations} allocation(s) against {check.slots} slots"
        )
        for p in check.problems:
            click.echo(f"  {p}")
    if not check.ok:
        raise click.exceptions.Exit(1)


@randomisation_group.command("simulate")
@click.option(
    "--families",
    type=click.IntRange(1, 100_000),
    required=True,
    help="Families per simulated trial.",
)
@click.option(
    "--reps", type=click.IntRange(1, 100_000), required=True, help="Number of simulated trials."
)
@click.option(
    "--method", type=click.Choice(["minimisation", "blocks"]), help="Method (default: the trial's)."
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the simulation.")
@click.option(
    "--trial",
    "trial_file",
    default="nim",
    show_default=True,
    help="Trial definition file or built-in name.",
)
@json_option
def randomisation_simulate(
    families: int, reps: int, method: str | None, seed: int, trial_file: str, as_json: bool
) -> None:
    """Compare allocation schemes over simulated trials (no database is used)."""
    definition = load_definition(trial_file)
    result = simulate_trial(
        definition, families, reps, method or definition.randomisation.method, seed
    )
    summary = result.summary()
    if as_json:
        print_json(summary)
        return
    click.echo(f"{summary['method']}: {reps} simulated trials of {families} families")
    rows = []
    for key in ("overall_imbalance", "within_stratum_imbalance", "marginal_imbalance"):
        d = summary[key]
        assert isinstance(d, dict)
        rows.append((key.replace("_", " "), d["mean"], d["median"], d["p95"], d["max"]))
    print_table(None, ["measure", "mean", "median", "95th centile", "max"], rows)
    click.echo(
        f"share per arm: {summary['arm_share']}; predictability of the next allocation: "
        f"{summary['predictability']}"
    )
