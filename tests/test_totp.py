"""TOTP (RFC 6238) against the RFCs' own test vectors; a code works once, with +-1 step."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from noim.domain import totp

RFC4226_KEY = b"12345678901234567890"
RFC4226 = [
    "755224", "287082", "359152", "969429", "338314",
    "254676", "287922", "162583", "399871", "520489",
]  # fmt: skip

KEYS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
# RFC 6238 appendix B: (time, sha1, sha256, sha512), 8 digits
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize("counter", range(10))
def test_hotp_rfc4226_vectors(counter: int) -> None:
    assert totp.hotp(RFC4226_KEY, counter) == RFC4226[counter]


@pytest.mark.parametrize(("at", "sha1", "sha256", "sha512"), RFC6238)
def test_totp_rfc6238_vectors(at: int, sha1: str, sha256: str, sha512: str) -> None:
    for digest, expected in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        assert totp.totp(KEYS[digest], at, digits=8, digest=digest) == expected
    # the same moment as a timezone-aware datetime
    moment = datetime.fromtimestamp(at, tz=UTC)
    assert totp.totp(KEYS["sha1"], moment, digits=8) == sha1
    # noim's 6 digits are the last 6 of the 8 (the same truncated value, mod 10**6)
    assert totp.totp(KEYS["sha1"], at) == sha1[-6:]


def _secret_of(key: bytes) -> str:
    import base64

    return base64.b32encode(key).decode().rstrip("=")


def test_verify_accepts_one_step_of_drift_and_no_more() -> None:
    secret = _secret_of(RFC4226_KEY)
    at = 1111111111  # step 37037037
    step = totp.step_at(at)
    for offset in (-1, 0, 1):
        code = totp.hotp(RFC4226_KEY, step + offset)
        assert totp.verify(secret, code, at) == step + offset
    for offset in (-3, -2, 2, 3):
        code = totp.hotp(RFC4226_KEY, step + offset)
        assert totp.verify(secret, code, at) is None


def test_a_code_is_accepted_once() -> None:
    secret = _secret_of(RFC4226_KEY)
    at = 1234567890
    code = totp.totp(RFC4226_KEY, at)
    step = totp.verify(secret, code, at)
    assert step == totp.step_at(at)
    # the same code again (same step, or later within the drift window) is refused
    assert totp.verify(secret, code, at, last_step=step) is None
    assert totp.verify(secret, code, at + 29, last_step=step) is None
    # the next step's code still works
    later = totp.totp(RFC4226_KEY, at + 30)
    assert totp.verify(secret, later, at + 30, last_step=step) == step + 1


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_malformed_codes_are_refused(typed: str) -> None:
    assert totp.verify(_secret_of(RFC4226_KEY), typed, 59) is None


def test_spaces_and_dashes_in_a_code_are_ignored() -> None:
    code = totp.totp(RFC4226_KEY, 59)
    spaced = f"{code[:3]} {code[3:]}"
    assert totp.verify(_secret_of(RFC4226_KEY), spaced, 59) == 1
    assert totp.verify(_secret_of(RFC4226_KEY), f"{code[:3]}-{code[3:]}", 59) == 1


def test_new_secret_and_provisioning_uri() -> None:
    secret = totp.new_secret()
    assert len(totp.decode_secret(secret)) == totp.SECRET_BYTES
    assert secret != totp.new_secret()
    assert totp.decode_secret(totp.grouped(secret).lower()) == totp.decode_secret(secret)
    uri = totp.provisioning_uri(secret, "coord_gla")
    assert uri.startswith("otpauth://totp/noim%3Acoord_gla?")
    assert f"secret={secret}" in uri and "period=30" in uri and "digits=6" in uri
    assert "algorithm=SHA1" in uri and "issuer=noim" in uri


@given(st.binary(min_size=10, max_size=64), st.integers(min_value=0, max_value=2**40))
def test_verify_finds_the_code_of_now(key: bytes, at: int) -> None:
    code = totp.totp(key, at)
    assert len(code) == 6 and code.isdigit()
    assert totp.verify(_secret_of(key), code, at) is not None
