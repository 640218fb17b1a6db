"""The list of common passwords shipped with noim: a published list, refused case-insensitively."""

from __future__ import annotations

from importlib import resources

import pytest

from noim.services import passwords


def test_the_list_names_its_source_and_licence() -> None:
    text = resources.files("noim.services").joinpath("data/common-passwords.txt").read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    assert "SecLists" in header and "MIT License" in header
    assert "Daniel Miessler" in header
    entries = passwords.common_passwords()
    assert 1000 < len(entries) < 5000
    assert all(len(e) >= 8 for e in entries)


@pytest.mark.parametrize(
    "password",
    [
        "passwordpassword",
        "PasswordPassword",
        "QWERTYUIOPASDF",
        "1q2w3e4r5t6y",
        "iloveyou1234",
        "unbelievable",  # from SecLists, 12 characters
        "MasterBating",  # from SecLists, 12 characters, mixed case
        "ILoveYouILoveYou",
    ],
)
def test_common_passwords_are_refused_whatever_their_case(password: str) -> None:
    found = passwords.problems("coord_gla", password)
    assert [p.rule for p in found] == ["PWD-003"], found
    assert password not in repr(found)  # the password itself is never echoed


@pytest.mark.parametrize(
    "short_common", ["password", "baseball", "trustno1", "Sunshine", "superman"]
)
def test_short_common_ones_are_in_the_list_and_refused(short_common: str) -> None:
    assert short_common.casefold() in passwords.common_passwords()
    rules = {p.rule for p in passwords.problems("someone", short_common)}
    assert rules == {"PWD-001", "PWD-003"}


def test_a_long_uncommon_passphrase_is_accepted() -> None:
    assert passwords.problems("coord_gla", "correct horse battery staple") == []
