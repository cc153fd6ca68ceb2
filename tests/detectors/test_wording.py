"""Number formatting for reasons: humanized numbers, feature labels and formats."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from detectors.wording import _strip_zeros, feature_format, feature_label, humanize


@pytest.mark.parametrize(("value", "fmt", "text"), [
    (412_000, "num", "412k"),
    (1_234_567, "tok", "1.2M"),
    (38_000, "num", "38k"),
    (2.5e9, "num", "2.5B"),
    (380, "num", "380"),
    (38.44, "num", "38.4"),
    (2.0, "num", "2"),
    (0.25, "num", "0.25"),
    (0.004, "num", "0.004"),
    (0.0, "num", "0"),
    (-12_500, "num", "-12.5k"),
    (0.71, "pct", "71%"),
    (0.045, "pct", "4.5%"),
    (1.0, "pct", "100%"),
    (38.4, "usd", "$38.40"),
    (0.5, "usd", "$0.50"),
    (12_345.0, "usd", "$12.3k"),
    (2_400_000.0, "usd", "$2.4M"),
    (2.6, "int", "3"),
    (1.25, "f1", "1.2"),
    (None, "num", "n/a"),
    (float("nan"), "pct", "n/a"),
])
def test_humanize(value: float | None, fmt: str, text: str) -> None:
    assert humanize(value, fmt) == text


def test_feature_format_and_label_follow_the_name() -> None:
    assert feature_format("near_repeat_share") == "pct"
    assert feature_format("tokens_team_z") == "f1"
    assert feature_format("unshipped_cost_usd") == "usd"
    assert feature_format("tokens") == "num"
    assert feature_label("near_repeat_share") == "near-identical prompts"
    assert feature_label("some_new_column") == "some new column"


def test_trailing_zeros_stripped_as_the_regex_did() -> None:
    """`_strip_zeros` relies on polars writing floats in their shortest form; check it against the
    general regex it replaced, over magnitudes, signs and roundings."""
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.lognormal(0, 12, 20_000) * rng.choice([-1, 1], 20_000),
                             [0.0, -0.0, 0.1, 1.0, 99.95, 100.0, 1e16, 1e17, 1e21, 5e-324, 1e300]])
    frame = pl.DataFrame({"x": values})
    for decimals in (0, 1, 2, 3):
        text = pl.col("x").round(decimals).cast(pl.String)
        regex = text.str.replace(r"(\.\d*?)0+$", "${1}").str.replace(r"\.$", "")
        out = frame.select(a=_strip_zeros(text), b=regex)
        assert out.get_column("a").equals(out.get_column("b"))
