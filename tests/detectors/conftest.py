"""Shared fixtures: synthetic tables, a fast config and their scores (computed once)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from detectors.scoring import default_config, merge_config, score_level
from tests.detectors import synthetic

FAST = {
    "levels": {
        "user_week": {"iforest": {"n_estimators": 60}},
        "session": {"iforest": {"n_estimators": 60}},
    }
}


@pytest.fixture(scope="session")
def config() -> dict:
    """The default config with fewer trees, so tests stay fast."""
    return merge_config(default_config(), FAST)


@pytest.fixture(scope="session")
def user_week_table() -> pl.DataFrame:
    return synthetic.user_weeks()


@pytest.fixture(scope="session")
def session_table() -> pl.DataFrame:
    return synthetic.sessions()


@pytest.fixture(scope="session")
def scored_user_weeks(user_week_table: pl.DataFrame, config: dict) -> pl.DataFrame:
    out = score_level(user_week_table, "user_week", config)
    return out.with_columns(user_week_table.select("persona", "is_gaming", "tactic"))


@pytest.fixture(scope="session")
def scored_sessions(session_table: pl.DataFrame, config: dict) -> pl.DataFrame:
    out = score_level(session_table, "session", config)
    return out.with_columns(session_table.select("persona", "is_gaming", "tactic"))


@pytest.fixture(scope="session")
def anomaly_table() -> tuple[pl.DataFrame, np.ndarray]:
    """300 normal rows and 6 injected rows far out in a, b and c (d stays normal).

    Rank-based members (ECOD, COPOD) cannot rank a row that is extreme in one feature above
    the most extreme normal row of another feature, so the injected rows are extreme in
    three features, as gamed rows are in practice; ``b`` is the feature the rule reads.
    """
    rng = np.random.default_rng(3)
    n, injected = 306, np.arange(300, 306)
    a, b, c = rng.lognormal(3, 0.4, n), rng.normal(10, 1, n), rng.normal(0, 1, n)
    a[injected] = np.linspace(200, 230, injected.size)
    b[injected] = np.linspace(40, 45, injected.size)
    c[injected] = np.linspace(6, 7, injected.size)
    table = pl.DataFrame({"a": a, "b": b, "c": c, "d": rng.uniform(0, 1, n), "key": [f"k{i}" for i in range(n)]})
    return table, injected
