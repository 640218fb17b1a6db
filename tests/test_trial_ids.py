"""Trial IDs carry an ISO 7064 MOD 37,36 check character."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from noim.domain import trial_ids
from noim.domain.trial_ids import ALPHABET, check_character, child_id, family_id, parse

prefixes = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=3)
seqs = st.integers(min_value=1, max_value=9999)


def test_format_examples() -> None:
    fid = family_id("G", 1)
    assert fid.startswith("G-0001-") and len(fid) == 8
    cid = child_id(fid, 2)
    assert cid.startswith("G-0001-02-")
    assert parse(cid).family_id == fid
    assert parse(fid).child_number is None
    assert parse(cid).child_number == 2


@given(prefixes, seqs)
def test_every_generated_id_parses(prefix: str, seq: int) -> None:
    fid = family_id(prefix, seq)
    assert trial_ids.is_valid(fid)
    assert parse(fid).family_seq == seq
    assert trial_ids.is_valid(child_id(fid, 1))


@given(prefixes, seqs, st.data())
def test_any_single_substitution_is_detected(prefix: str, seq: int, data: st.DataObject) -> None:
    fid = child_id(family_id(prefix, seq), 3)
    positions = [i for i, c in enumerate(fid) if c != "-"]
    i = data.draw(st.sampled_from(positions))
    replacement = data.draw(st.sampled_from([c for c in ALPHABET if c != fid[i]]))
    mutated = fid[:i] + replacement + fid[i + 1 :]
    assert not trial_ids.is_valid(mutated)


@given(prefixes, seqs, st.data())
def test_any_adjacent_transposition_is_detected(prefix: str, seq: int, data: st.DataObject) -> None:
    fid = family_id(prefix, seq)
    body = fid.replace("-", "")
    pairs = [i for i in range(len(body) - 1) if body[i] != body[i + 1]]
    if not pairs:
        return
    i = data.draw(st.sampled_from(pairs))
    swapped = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
    # rebuild with the hyphens where they were
    n = len(prefix)
    candidate = f"{swapped[:n]}-{swapped[n:-1]}-{swapped[-1]}"
    assert not trial_ids.is_valid(candidate)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("G-0001", "expected a family ID like G-0001-X"),
        ("g-0001-?", "expected a family ID"),
        ("1-0001-A", "expected a family ID"),
    ],
)
def test_malformed_ids_say_what_was_expected(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse(text)


def test_wrong_check_character_names_the_right_one() -> None:
    fid = family_id("L", 42)
    wrong = fid[:-1] + ("A" if fid[-1] != "A" else "B")
    with pytest.raises(ValueError, match=f"needs '{fid[-1]}'"):
        parse(wrong)


def test_check_character_is_case_insensitive_and_ignores_hyphens() -> None:
    assert check_character("g-0001") == check_character("G0001")


def test_quasigroup_is_latin_and_totally_antisymmetric() -> None:
    """Exhaustive: the properties that make every single error and adjacent swap detectable."""
    table = trial_ids.TABLE
    n = len(ALPHABET)
    for row in table:
        assert sorted(row) == list(range(n))
    for col in range(n):
        assert sorted(table[r][col] for r in range(n)) == list(range(n))
    for c in range(n):
        for x in range(n):
            for y in range(x + 1, n):
                assert table[table[c][x]][y] != table[table[c][y]][x]


def test_no_transposition_in_any_glasgow_family_id_is_missed() -> None:
    missed = []
    for seq in range(1, 2000):
        body = family_id("G", seq).replace("-", "")
        for i in range(len(body) - 1):
            if body[i] != body[i + 1]:
                s = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
                candidate = f"{s[:1]}-{s[1:-1]}-{s[-1]}"
                if trial_ids.is_valid(candidate):
                    missed.append(candidate)
    assert missed == []
