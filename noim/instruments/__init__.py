"""Instruments as data, scored by one engine.

``score(instrument, responses, form=None)`` is the one public scoring entry point:
``instrument`` is a lower-case code (``sdq``), ``responses`` maps 1-based item numbers to
values (or None when unanswered), and the result maps scale codes to scores (None when a
scale cannot be scored).  Definitions live in ``noim/instruments/definitions``.
"""

from __future__ import annotations

from typing import Any

from noim.instruments.engine import InstrumentDef, InstrumentError, available, load, score_with


def score(
    instrument: str, responses: dict[int, Any], form: str | None = None
) -> dict[str, int | None]:
    """Score one completed instrument (see the module docstring)."""
    return score_with(load(instrument.lower()), responses, form)


__all__ = ["InstrumentDef", "InstrumentError", "available", "load", "score"]
