"""Logins to the web application, for administrators on the server: one-time passwords,
ending sessions, the second factor (``noim users password|logout|second-factor|...``).

``noim users add`` (noim/cli/admin.py) prints the new user's one-time password.
"""

from __future__ import annotations

import click

from noim.cli.common import CliState, json_option, pass_state, print_json
from noim.services import auth


@click.command("password")
@click.argument("name")
@json_option
@pass_state
def users_password(state: CliState, name: str, as_json: bool) -> None:
    """Give user NAME a new one-time password (printed once): their sessions end, a lockout
    is cleared, and they choose their own password at the next login."""
    password = auth.reset_password(state.db(), state.actor(), name)
    if as_json:
        print_json({"name": name, "one_time_password": password})
    else:
        click.echo(f"One-time password for {name} (shown once; changed at next login): {password}")


@click.command("logout")
@click.argument("name")
@json_option
@pass_state
def users_logout(state: CliState, name: str, as_json: bool) -> None:
    """End every web session of user NAME now."""
    count = auth.revoke_sessions(state.db(), state.actor(), name, reason="ended by administrator")
    if as_json:
        print_json({"name": name, "sessions_ended": count})
    else:
        click.echo(f"Ended {count} session(s) of {name}")


@click.command("second-factor")
@click.argument("role")
@click.option(
    "--required/--optional",
    required=True,
    help="Whether users of ROLE must give a TOTP code at every login.",
)
@json_option
@pass_state
def users_second_factor(state: CliState, role: str, required: bool, as_json: bool) -> None:
    """Make a second factor (TOTP) compulsory, or optional, for users of ROLE.

    Users of ROLE without one set it up at their next login."""
    auth.set_second_factor_required(state.db(), state.actor(), role, required)
    if as_json:
        print_json({"role": role, "second_factor_required": required})
    else:
        click.echo(f"Second factor {'required' if required else 'optional'} for role {role}")


@click.command("remove-second-factor")
@click.argument("name")
@json_option
@pass_state
def users_remove_second_factor(state: CliState, name: str, as_json: bool) -> None:
    """Remove user NAME's second factor (a lost phone): their sessions end, and they set up
    a new one at the next login if their role requires it."""
    auth.remove_second_factor(state.db(), state.actor(), name)
    if as_json:
        print_json({"name": name, "second_factor": False})
    else:
        click.echo(f"Removed the second factor of {name}; their sessions have ended")
