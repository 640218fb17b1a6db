"""Statistics for the trial: tidy pandas DataFrames in, frozen result objects out.

``noim.stats`` knows no SQL (``noim.extract`` builds its DataFrames from the database).
The public names below are the analysis plan's API; see docs/analysis-methods.md for the
models, estimators and references.
"""

from __future__ import annotations

from noim.stats._base import (
    MIN_CLUSTERS_PER_ARM,
    RECOMMENDED_CLUSTERS,
    FewClustersWarning,
    Result,
    StatsInputError,
)
from noim.stats.binary import binary_by_arm
from noim.stats.competing import CumulativeIncidence, GrayTest, cumulative_incidence, gray_test
from noim.stats.costs import cost_difference
from noim.stats.counts import rate_ratio
from noim.stats.cox import cox
from noim.stats.finegray import FineGrayResult, fine_gray
from noim.stats.imputation import impute, mi_compare_arms, pool
from noim.stats.models import ArmComparison, Interaction, compare_arms, interaction
from noim.stats.survival import kaplan_meier, logrank, rmst

__all__ = [
    "MIN_CLUSTERS_PER_ARM",
    "RECOMMENDED_CLUSTERS",
    "ArmComparison",
    "CumulativeIncidence",
    "FewClustersWarning",
    "FineGrayResult",
    "GrayTest",
    "Interaction",
    "Result",
    "StatsInputError",
    "binary_by_arm",
    "compare_arms",
    "cost_difference",
    "cox",
    "cumulative_incidence",
    "fine_gray",
    "gray_test",
    "impute",
    "interaction",
    "kaplan_meier",
    "logrank",
    "mi_compare_arms",
    "pool",
    "rate_ratio",
    "rmst",
]
