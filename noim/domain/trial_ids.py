"""Trial identifiers with a check character (Damm's algorithm over 36 symbols).

A family's ID is ``<prefix>-<4-digit sequence>-<check>`` (``G-0001-X``); each
child's is the family's ID with a two-digit child number:
``<prefix>-<sequence>-<child>-<check>`` (``G-0001-01-7``).

The check character is computed over the letters and digits with Damm's
algorithm (H. M. Damm, *Totally anti-symmetric quasigroups for all orders
n != 2, 6*, Discrete Mathematics 307 (2007) 715-729): the 36 symbols 0-9 and
A-Z form a totally anti-symmetric quasigroup, so every single-character
substitution and every transposition of two adjacent characters (the check
character included) changes the result.  The quasigroup is the direct product
of the affine quasigroups ``x * y = a x + y`` over GF(4) (a = w, a root of
x^2 + x + 1) and GF(9) (a = -1), which are totally anti-symmetric because
``a`` is neither 0 nor 1.  ISO 7064 MOD 37,36 was not used: it misses about
0.2% of adjacent transpositions in IDs of this form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}

PREFIX_RE = re.compile(r"^[A-Z]{1,3}$")
_FAMILY_RE = re.compile(r"^([A-Z]{1,3})-(\d{4,6})-([0-9A-Z])$")
_CHILD_RE = re.compile(r"^([A-Z]{1,3})-(\d{4,6})-(\d{2})-([0-9A-Z])$")


def _gf4_mul(x: int, y: int) -> int:
    """Multiply in GF(4) = GF(2)[t]/(t^2 + t + 1); elements are 2-bit polynomials."""
    r = 0
    for bit in range(2):
        if y >> bit & 1:
            r ^= x << bit
    if r & 0b100:
        r ^= 0b111
    return r


def _gf9(u: int) -> tuple[int, int]:
    return u % 3, u // 3  # u = a + 3b  <->  a + b i, with i^2 = -1 over GF(3)


def _gf9_int(a: int, b: int) -> int:
    return a % 3 + 3 * (b % 3)


def _build_table() -> tuple[tuple[int, ...], ...]:
    # symbol v <-> (v // 9 in GF(4), v % 9 in GF(9)); x * y = a x + y in each component
    w = 0b10  # a root of t^2 + t + 1 in GF(4)
    table = []
    for x in range(36):
        x4, (xa, xb) = x // 9, _gf9(x % 9)
        row = []
        for y in range(36):
            y4, (ya, yb) = y // 9, _gf9(y % 9)
            z4 = _gf4_mul(w, x4) ^ y4
            z9 = _gf9_int(-xa + ya, -xb + yb)  # a = -1 in GF(9)
            row.append(z4 * 9 + z9)
        table.append(tuple(row))
    return tuple(table)


#: the quasigroup: ``TABLE[x][y]`` is x * y
TABLE = _build_table()


def _interim(payload: str) -> int:
    state = 0
    for ch in payload.upper():
        if ch == "-":
            continue
        try:
            value = _VALUE[ch]
        except KeyError:
            raise ValueError(f"character {ch!r} in {payload!r}: expected A-Z or 0-9") from None
        state = TABLE[state][value]
    return state


def check_character(payload: str) -> str:
    """Return the check character that makes ``payload`` + check reduce to 0."""
    state = _interim(payload)
    return ALPHABET[TABLE[state].index(0)]


def is_valid(trial_id: str) -> bool:
    """True when ``trial_id`` is a well-formed family or child ID with the right check."""
    try:
        parse(trial_id)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class TrialId:
    prefix: str
    family_seq: int
    child_number: int | None

    @property
    def family_id(self) -> str:
        return family_id(self.prefix, self.family_seq)


def family_id(prefix: str, seq: int) -> str:
    """Format a family trial ID, e.g. ``family_id("G", 1) == "G-0001-X"``."""
    if not PREFIX_RE.match(prefix):
        raise ValueError(f"site ID prefix {prefix!r}: expected 1-3 capital letters")
    if not 1 <= seq <= 999_999:
        raise ValueError(f"family sequence {seq}: expected 1 to 999999")
    body = f"{prefix}-{seq:04d}"
    return f"{body}-{check_character(body)}"


def child_id(family_trial_id: str, child_number: int) -> str:
    """Format a child's trial ID from its family's ID and its number in the family."""
    parsed = parse(family_trial_id)
    if parsed.child_number is not None:
        raise ValueError(f"{family_trial_id!r} is a child ID; expected a family ID")
    if not 1 <= child_number <= 99:
        raise ValueError(f"child number {child_number}: expected 1 to 99")
    body = f"{parsed.prefix}-{parsed.family_seq:04d}-{child_number:02d}"
    return f"{body}-{check_character(body)}"


def parse(trial_id: str) -> TrialId:
    """Parse and check a family or child ID; raise ``ValueError`` saying what is wrong."""
    text = trial_id.strip().upper()
    m = _FAMILY_RE.match(text)
    if m:
        prefix, seq, check = m.group(1), int(m.group(2)), m.group(3)
        body = text[:-2]
        child = None
    else:
        m = _CHILD_RE.match(text)
        if not m:
            raise ValueError(
                f"trial ID {trial_id!r}: expected a family ID like G-0001-X "
                "or a child ID like G-0001-01-7"
            )
        prefix, seq, child, check = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        body = text[:-2]
    expected = check_character(body)
    if check != expected:
        raise ValueError(
            f"trial ID {trial_id!r}: check character is {check!r} but {body} needs "
            f"{expected!r} (mistyped ID?)"
        )
    return TrialId(prefix=prefix, family_seq=seq, child_number=child)
