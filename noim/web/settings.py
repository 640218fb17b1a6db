"""What the web application can be told: timeouts, cookies, the trial's date order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from noim.services import auth


@dataclass(frozen=True)
class WebSettings:
    #: a session unused this long ends
    idle_timeout: timedelta = auth.IDLE_TIMEOUT
    #: a session ends this long after login, used or not
    absolute_timeout: timedelta = auth.ABSOLUTE_TIMEOUT
    #: the Secure flag on the session cookie: None sets it except on loopback (http to
    #: 127.0.0.1 while testing); behind a TLS proxy it is always set
    secure_cookies: bool | None = None
    #: the order dates are typed in (the UK trial: day, month, year)
    date_order: str = "dmy"
    #: the largest upload accepted (CSV imports)
    max_upload_bytes: int = 50 * 1024 * 1024
