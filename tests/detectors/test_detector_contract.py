"""The same contract test for every detector (the shape of pyod's per-model tests)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

from detectors.base import EVIDENCE_SCHEMA, BaseDetector
from detectors.ensemble import PyodEnsembleDetector
from detectors.iforest import IsolationForestDetector
from detectors.rules import RuleDetector

MODEL_ARGS = dict(features=["a", "b", "c", "d"], transforms={"a": "log1p"}, random_state=5)
B_RULE = {
    "name": "b_high", "level": "user_week", "weight": 0.8, "wasted_cost": "0",
    "conditions": [{"feature": "b", "op": ">=", "threshold": 20.0}], "reason": "b is {b:num}",
}

FACTORIES: dict[str, Callable[[], BaseDetector]] = {
    "rules": lambda: RuleDetector(rules=[B_RULE], level="user_week"),
    "iforest": lambda: IsolationForestDetector(n_estimators=40, **MODEL_ARGS),
    "ensemble": lambda: PyodEnsembleDetector(**MODEL_ARGS),
    "ensemble_ecdf": lambda: PyodEnsembleDetector(normalisation="ecdf", members=["hbos", "ecod"], **MODEL_ARGS),
}


@pytest.fixture(params=list(FACTORIES), scope="module")
def name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def fitted(name: str, anomaly_table: tuple[pl.DataFrame, np.ndarray]) -> BaseDetector:
    return FACTORIES[name]().fit(anomaly_table[0])


def test_constructor_only_stores_parameters(name: str) -> None:
    detector = FACTORIES[name]()
    params = detector.get_params()
    assert set(vars(detector)) == set(params)
    assert not [k for k in vars(detector) if k.endswith("_")]
    assert clone(detector).get_params() == params


def test_fit_returns_self_and_learned_attributes_end_with_underscore(
    name: str, anomaly_table: tuple[pl.DataFrame, np.ndarray]
) -> None:
    detector = FACTORIES[name]()
    before = set(vars(detector))
    assert detector.fit(anomaly_table[0]) is detector
    learned = set(vars(detector)) - before
    assert learned, "fit learned nothing"
    assert all(k.endswith("_") for k in learned), sorted(learned)


def test_unfitted_detector_refuses_to_score(name: str, anomaly_table: tuple[pl.DataFrame, np.ndarray]) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        FACTORIES[name]().decision_function(anomaly_table[0])


def test_one_finite_score_per_row(fitted: BaseDetector, anomaly_table: tuple[pl.DataFrame, np.ndarray]) -> None:
    scores = fitted.decision_function(anomaly_table[0])
    assert scores.shape == (anomaly_table[0].height,)
    assert scores.dtype == np.float64 and np.isfinite(scores).all()


def test_injected_rows_score_above_every_normal_row(
    fitted: BaseDetector, anomaly_table: tuple[pl.DataFrame, np.ndarray]
) -> None:
    table, injected = anomaly_table
    scores = fitted.decision_function(table)
    normal = np.delete(scores, injected)
    assert scores[injected].min() > normal.max()


def test_same_random_state_gives_identical_scores(name: str, anomaly_table: tuple[pl.DataFrame, np.ndarray]) -> None:
    table = anomaly_table[0]
    first = FACTORIES[name]().fit(table).decision_function(table)
    second = FACTORIES[name]().fit(table).decision_function(table)
    assert np.array_equal(first, second)


def test_explanation_names_the_injected_feature(
    fitted: BaseDetector, anomaly_table: tuple[pl.DataFrame, np.ndarray]
) -> None:
    table, injected = anomaly_table
    evidence = fitted.explain(table, injected, top_k=3)
    assert evidence.schema == pl.Schema(EVIDENCE_SCHEMA)
    assert (evidence.get_column("contribution") > 0).all()
    top = evidence.sort("contribution", descending=True).unique("row", keep="first")
    assert sorted(top.get_column("row").to_list()) == injected.tolist()
    assert set(top.get_column("feature")) <= {"a", "b", "c"}  # the injected features, never d
    named_b = evidence.filter(pl.col("feature") == "b")
    assert sorted(named_b.get_column("row").to_list()) == injected.tolist()
    expected = table.get_column("b").to_numpy()[named_b.get_column("row").to_numpy()]
    assert np.allclose(named_b.get_column("value").to_numpy(), expected)
    assert named_b.get_column("text").str.contains(r"\b4[0-5]").all()


def test_explain_of_no_rows_is_empty(fitted: BaseDetector, anomaly_table: tuple[pl.DataFrame, np.ndarray]) -> None:
    evidence = fitted.explain(anomaly_table[0], [])
    assert evidence.height == 0 and evidence.schema == pl.Schema(EVIDENCE_SCHEMA)


@pytest.mark.parametrize("max_train_rows", [None, 150])
def test_fit_decision_function_equals_fit_then_decision_function(
    max_train_rows: int | None, anomaly_table: tuple[pl.DataFrame, np.ndarray]
) -> None:
    table = anomaly_table[0]
    for model in ("iforest", "ensemble", "ensemble_ecdf"):
        once = FACTORIES[model]().set_params(max_train_rows=max_train_rows)
        twice = FACTORIES[model]().set_params(max_train_rows=max_train_rows)
        scores = once.fit_decision_function(table)
        assert once.trained_on_every_row_ is (max_train_rows is None)
        assert np.array_equal(scores, twice.fit(table).decision_function(table)), model
