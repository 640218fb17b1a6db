"""Time-based one-time passwords (RFC 6238): the optional second factor of a web login.

SHA-1, 30-second steps, 6 digits: what every authenticator app (Google Authenticator,
Microsoft Authenticator, FreeOTP, Aegis ...) uses by default. Only ``hmac`` and ``hashlib``:
no dependency. Pure functions; the caller keeps the secret and the last step accepted (a code
is accepted once: ``verify`` refuses a step at or before ``last_step``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from datetime import datetime
from urllib.parse import quote, urlencode

STEP_SECONDS = 30
DIGITS = 6
#: steps either side of now that are still accepted (clock drift of the phone)
DRIFT_STEPS = 1
#: bytes of a new secret (160 bits, as RFC 4226 recommends)
SECRET_BYTES = 20
ISSUER = "noim"


def new_secret() -> str:
    """A random secret, base32 without padding (what an authenticator app is given)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def decode_secret(secret: str) -> bytes:
    """The key bytes of a base32 secret (spaces and case ignored, padding optional)."""
    cleaned = "".join(secret.split()).upper()
    cleaned += "=" * (-len(cleaned) % 8)
    return base64.b32decode(cleaned)


def hotp(key: bytes, counter: int, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226's HOTP value of ``counter`` (dynamic truncation, ``digits`` decimal digits)."""
    mac = hmac.new(key, struct.pack(">Q", counter), getattr(hashlib, digest)).digest()
    offset = mac[-1] & 0x0F
    code = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(code % (10**digits)).zfill(digits)


def step_at(moment: datetime | float) -> int:
    """The time step (30-second period since the Unix epoch) of ``moment``."""
    seconds = moment.timestamp() if isinstance(moment, datetime) else moment
    return int(seconds // STEP_SECONDS)


def totp(
    key: bytes,
    moment: datetime | float,
    digits: int = DIGITS,
    digest: str = "sha1",
) -> str:
    """RFC 6238's TOTP value at ``moment`` (a timezone-aware datetime or Unix seconds)."""
    return hotp(key, step_at(moment), digits, digest)


def normalise_code(code: str) -> str:
    """What the user typed, without spaces or dashes ("123 456" and "123-456" are fine)."""
    return "".join(ch for ch in (code or "") if ch not in " -\t")


def verify(
    secret: str,
    code: str,
    moment: datetime | float,
    last_step: int | None = None,
    drift: int = DRIFT_STEPS,
) -> int | None:
    """The step ``code`` is valid for (within ``drift`` steps of ``moment``), or None.

    A step at or before ``last_step`` is never accepted again, so a code works once.
    """
    code = normalise_code(code)
    if len(code) != DIGITS or not code.isdigit():
        return None
    key = decode_secret(secret)
    now = step_at(moment)
    for step in range(max(0, now - drift), now + drift + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(hotp(key, step), code):
            return step
    return None


def provisioning_uri(secret: str, account: str, issuer: str = ISSUER) -> str:
    """The ``otpauth://`` URI an authenticator app reads (typed in or pasted)."""
    label = quote(f"{issuer}:{account}", safe="")
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        }
    )
    return f"otpauth://totp/{label}?{query}"


def grouped(secret: str) -> str:
    """The secret in groups of four, easier to type into a phone."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
