"""The parts of statsmodels that ``noim.stats`` uses.

Imported from their modules rather than through ``statsmodels.api``, which loads all of
statsmodels (time series included) and costs about a second at start-up.
"""

from __future__ import annotations

from statsmodels.genmod import cov_struct, families
from statsmodels.genmod.generalized_estimating_equations import GEE
from statsmodels.genmod.generalized_linear_model import GLM

__all__ = ["GEE", "GLM", "cov_struct", "families"]
