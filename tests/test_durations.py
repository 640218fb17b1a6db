from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from noim.domain.durations import Duration, add_months, months_between


@pytest.mark.parametrize(
    ("text", "start", "expected"),
    [
        ("4w", date(2024, 1, 1), date(2024, 1, 29)),
        ("14w", date(2024, 1, 1), date(2024, 4, 8)),
        ("15m", date(2024, 1, 31), date(2025, 4, 30)),  # clamped to the month's end
        ("30m", date(2023, 8, 29), date(2026, 2, 28)),
        ("2y", date(2024, 2, 29), date(2026, 2, 28)),
        ("-2w", date(2024, 1, 15), date(2024, 1, 1)),
        ("90d", date(2024, 1, 1), date(2024, 3, 31)),
    ],
)
def test_add(text: str, start: date, expected: date) -> None:
    assert Duration.parse(text).add_to(start) == expected


@pytest.mark.parametrize("bad", ["", "4", "w", "4 weeks", "1.5m", "15x", "--2w"])
def test_bad_durations_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="expected a whole number and a unit"):
        Duration.parse(bad)


def test_round_trip_text() -> None:
    assert str(Duration.parse(" 15m ")) == "15m"
    assert Duration.parse("-2w").describe() == "2 weeks before"


@pytest.mark.parametrize(
    ("born", "on", "months"),
    [
        (date(2020, 1, 15), date(2020, 1, 14), -1),
        (date(2020, 1, 15), date(2020, 2, 14), 0),
        (date(2020, 1, 15), date(2020, 2, 15), 1),
        (date(2020, 1, 31), date(2020, 2, 29), 1),  # month-end counts as reached
        (date(2019, 3, 1), date(2024, 3, 1), 60),
        (date(2019, 3, 2), date(2024, 3, 1), 59),
    ],
)
def test_months_between(born: date, on: date, months: int) -> None:
    assert months_between(born, on) == months


@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2040, 1, 1)), st.integers(0, 400))
def test_months_between_inverts_add_months(start: date, n: int) -> None:
    assert months_between(start, add_months(start, n)) == n
