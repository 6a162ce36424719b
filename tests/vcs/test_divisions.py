"""Province codes as people and URLs write them."""

import pytest

from vcs.divisions import province_code, provinces


def test_the_34_provinces():
    assert len(provinces()) == 34 and provinces()[0].code == "01"


@pytest.mark.parametrize("raw, code", [("1", "01"), ("01", "01"), (" 31 ", "31"), (1, "01"), ("001", "01")])
def test_canonical_codes(raw, code):
    assert province_code(raw) == code


@pytest.mark.parametrize("raw", ["¹", "٣", "0¹", "99", "", "1" * 5000, "+1", "1.0", "x1"])
def test_anything_else_names_no_province(raw):
    assert province_code(raw) is None
