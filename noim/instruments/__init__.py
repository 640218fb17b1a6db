"""Instruments as data, scored by one engine.

``score(instrument, responses, form=None)`` is the one public scoring entry point for a
single record: ``instrument`` is a lower-case code (``sdq``, ``bitsea``, ``pedsql``),
``responses`` maps 1-based item numbers to values (or None when unanswered), and the result
maps scale codes to scores (None when a scale cannot be scored).

``score_many(instrument, values, items, form=None)`` scores many records at once (bulk
import): ``values`` is a float matrix, one row per record and one column per item number in
``items``, NaN where unanswered; the result maps scale codes to float arrays (NaN = missing).
Both run the same per-rule code (:mod:`noim.instruments.vector`), so they agree exactly.

``classify(instrument, scores, sex=..., age_months=...)`` flags scores against the
cut-offs configured for the instrument (``noim/instruments/cutoffs/*.toml``).

Definitions live in ``noim/instruments/definitions``; see docs/instruments.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from noim.instruments import vector
from noim.instruments.cutoffs import CutoffTable, classify, load_cutoffs, parse_cutoffs
from noim.instruments.engine import (
    InstrumentDef,
    InstrumentError,
    available,
    form_for_age,
    load,
    score_with,
)


def score(
    instrument: str, responses: Mapping[int, Any], form: str | None = None
) -> dict[str, float | None]:
    """Score one completed instrument (see the module docstring).

    Whole-number scales (SDQ, BITSEA) come back as ``int``, means (PedsQL) as ``float``.
    """
    return score_with(load(instrument.lower()), responses, form)


def score_many(
    instrument: str,
    values: npt.NDArray[np.float64],
    items: Sequence[int],
    form: str | None = None,
) -> dict[str, npt.NDArray[np.float64]]:
    """Score many completed instruments of one form at once (see the module docstring).

    Raises InstrumentError naming every offending item (with the first offending rows) when
    a value is not allowed, an item is unknown or given twice, or the form is wrong.
    """
    d = load(instrument.lower())
    matrix = vector.as_matrix(values, len(items))
    problems = vector.validate(d, matrix, items, form)
    if problems:
        raise InstrumentError(f"{d.code}: " + "; ".join(problems))
    return vector.compute(d, matrix, [int(i) for i in items], form)


__all__ = [
    "CutoffTable",
    "InstrumentDef",
    "InstrumentError",
    "available",
    "classify",
    "form_for_age",
    "load",
    "load_cutoffs",
    "parse_cutoffs",
    "score",
    "score_many",
]
