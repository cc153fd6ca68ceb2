"""IsolationForestDetector specifics: threaded scoring, subsampling, fills."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import detectors.iforest as iforest_module
from detectors.iforest import IsolationForestDetector


def test_threaded_scoring_is_bit_identical(anomaly_table: tuple[pl.DataFrame, np.ndarray],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    table = anomaly_table[0]
    detector = IsolationForestDetector(features=["a", "b", "c"], n_estimators=30, n_jobs=1).fit(table)
    single = detector.decision_function(table)
    monkeypatch.setattr(iforest_module, "_PARALLEL_MIN_ROWS", 10)
    detector.set_params(n_jobs=2)
    assert np.array_equal(single, detector.decision_function(table))


def test_scores_are_sklearn_anomaly_scores(anomaly_table: tuple[pl.DataFrame, np.ndarray]) -> None:
    table = anomaly_table[0]
    detector = IsolationForestDetector(features=["a", "b"], n_estimators=30).fit(table)
    scores = detector.decision_function(table)
    assert np.all((scores > 0) & (scores <= 1))
    assert np.array_equal(scores, -detector.model_.score_samples(detector._matrix(table)))


def test_max_train_rows_subsamples_with_the_seed(anomaly_table: tuple[pl.DataFrame, np.ndarray]) -> None:
    table = anomaly_table[0]
    make = lambda seed: IsolationForestDetector(features=["a", "b"], n_estimators=20, max_train_rows=100,  # noqa: E731
                                                random_state=seed).fit(table)
    assert make(1).n_train_ == 100
    assert np.array_equal(make(1).decision_function(table), make(1).decision_function(table))
    assert not np.array_equal(make(1).decision_function(table), make(2).decision_function(table))


def test_null_per_change_is_filled_from_tokens() -> None:
    rng = np.random.default_rng(1)
    tokens = rng.lognormal(13, 0.3, 200)
    per_change = tokens / 4
    per_change[:3] = np.nan
    tokens[:3] = 5e7  # no deployed change and a huge week: must look extreme, not typical
    table = pl.DataFrame({"tokens": tokens, "tokens_per_deployed_change": per_change}).with_columns(
        pl.col("tokens_per_deployed_change").fill_nan(None))
    detector = IsolationForestDetector(
        features=["tokens_per_deployed_change"], transforms={"tokens_per_deployed_change": "log1p"},
        fill={"tokens_per_deployed_change": "tokens"}, n_estimators=50,
    ).fit(table)
    scores = detector.decision_function(table)
    assert scores[:3].min() > np.delete(scores, [0, 1, 2]).max()
    evidence = detector.explain(table, [0])
    assert evidence.get_column("text").item().startswith("tokens per deployed change n/a (taken as 50M)")
