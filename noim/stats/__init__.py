"""Statistics for the trial: tidy pandas DataFrames in, frozen result objects out.

``noim.stats`` knows no SQL (``noim.extract`` builds its DataFrames from the database).
The public names below are the analysis plan's API; see docs/analysis-methods.md for the
models, estimators and references.
"""

from __future__ import annotations

from noim.stats._base import Result, StatsInputError
from noim.stats.competing import CumulativeIncidence, GrayTest, cumulative_incidence, gray_test
from noim.stats.finegray import FineGrayResult, fine_gray

__all__ = [
    "CumulativeIncidence",
    "FineGrayResult",
    "GrayTest",
    "Result",
    "StatsInputError",
    "cumulative_incidence",
    "fine_gray",
    "gray_test",
]
