"""A number as Excel shows it under its number format: a `Typed` while it is a quantity, its text
when the format makes it a shape (a phone, a ZIP code)."""

from __future__ import annotations

import pytest

from bulk_updater.inputs.numbers import shown
from bulk_updater.inputs.values import Typed

PHONE = "[<=9999999]###-####;(###) ###-####"  # Excel's Special > Phone Number


@pytest.mark.parametrize(
    ("value", "pattern", "text"),
    [
        (4155553898, PHONE, "(415) 555-3898"),
        (5553898, PHONE, "555-3898"),
        (2134, "00000", "02134"),
        (21340001, "00000-0000", "02134-0001"),
        (123456789, "000-00-0000", "123-45-6789"),
    ],
)
def test_a_shape_is_its_text(value: float, pattern: str, text: str) -> None:
    result = shown(value, pattern)
    assert result == text
    assert not isinstance(result, Typed)


@pytest.mark.parametrize(
    ("value", "pattern", "text"),
    [
        (1201, "#,##0", "1,201"),
        (1201.5, "#,##0.00", "1,201.50"),
        (0.15, "0%", "15%"),
        (-1234.5, "$#,##0.00", "-$1,234.50"),
        (-1234.5, "#,##0.00;(#,##0.00)", "(1,234.50)"),
        (1234.5, "#,##0.00 [$€-407]", "1,234.50 €"),
        (1.005, "0.00", "1.01"),
        (1234567, "#,##0,", "1,235"),
        (3, '0 "units"', "3 units"),
        (250.0, "General", "250"),
        (12.5, "General", "12.5"),
        (1e20, "0.00E+00", "1E+20"),  # scientific: General's text
        (0, "#,##0", "0"),
    ],
)
def test_a_quantity_keeps_its_number(value: float, pattern: str, text: str) -> None:
    result = shown(value, pattern)
    assert result == text
    assert isinstance(result, Typed)
    assert result.value == value
