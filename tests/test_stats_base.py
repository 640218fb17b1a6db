"""Input checks shared by every estimator: clear errors, never a crash or a silent NaN."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from noim.stats._base import (
    Result,
    StatsInputError,
    event_column,
    group_levels,
    numeric_column,
    require_columns,
)


def test_missing_column_and_empty_frame() -> None:
    df = pd.DataFrame({"time": [1.0], "event": [1]})
    with pytest.raises(
        StatsInputError, match="no column\\(s\\) 'arm'; the data have 'time', 'event'"
    ):
        require_columns(df, ["time", "arm", None], "kaplan_meier")
    with pytest.raises(StatsInputError, match="empty DataFrame"):
        require_columns(df.iloc[:0], ["time"], "kaplan_meier")


def test_numeric_and_event_columns() -> None:
    df = pd.DataFrame({"t": [1.0, np.nan, 3.0], "e": [0, 1, 2], "s": ["1", "x", "2"]})
    with pytest.raises(StatsInputError, match="1 missing value"):
        numeric_column(df, "t", "cox")
    with pytest.raises(StatsInputError, match="holds 'x'"):
        numeric_column(df, "s", "cox")
    with pytest.raises(StatsInputError, match="expected 0 \\(censored\\) or 1 \\(event\\)"):
        event_column(df, "e", "cox")
    assert event_column(df, "e", "cuminc", causes=True).tolist() == [0, 1, 2]
    with pytest.raises(StatsInputError, match="at least 0"):
        numeric_column(pd.DataFrame({"t": [-1.0]}), "t", "km", minimum=0)


def test_group_levels_sorted_with_reference() -> None:
    df = pd.DataFrame({"arm": ["SAU", "NIM", "SAU"]})
    levels, codes = group_levels(df, "arm", "compare_arms")
    assert levels == ["NIM", "SAU"]
    assert codes.tolist() == [1, 0, 1]
    levels, codes = group_levels(df, "arm", "compare_arms", reference="SAU", at_least=2)
    assert levels == ["SAU", "NIM"]
    assert codes.tolist() == [0, 1, 0]
    with pytest.raises(StatsInputError, match="at least 2"):
        group_levels(df.iloc[:1], "arm", "compare_arms", at_least=2)


def test_result_prints_method_and_n() -> None:
    r = Result("test", 3, pd.DataFrame({"x": [1]}))
    assert str(r).startswith("test (n = 3)")


def test_group_levels_codes_every_row_of_many_kinds() -> None:
    values = ["b", "a", "c", "a", "b", "b"]
    for series in (
        pd.Series(values),
        pd.Series(values, dtype="category"),
        pd.Series([3, 1, 2, 1, 3, 3]),
        pd.Series([True, False, True, False, True, True]),
    ):
        levels, codes = group_levels(pd.DataFrame({"g": series}), "g", "test")
        assert levels == sorted(set(series.tolist()))
        assert [levels[c] for c in codes] == series.tolist()
