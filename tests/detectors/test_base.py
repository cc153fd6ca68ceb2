"""Shared machinery: the feature matrix, robust scale, occlusion and the models' evidence."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from detectors.base import MatrixDetector, robust_location_scale, seeded_subsample


def test_robust_location_scale() -> None:
    median, scale = robust_location_scale(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert median == 3.0
    assert scale == pytest.approx(1.4826 * 1.0)
    assert robust_location_scale(np.array([5.0, 5.0, 5.0])) == (5.0, 1.0)  # flat: falls back to 1


def test_seeded_subsample_is_sorted_and_repeatable() -> None:
    assert seeded_subsample(10, 20, 0) is None
    first = seeded_subsample(1000, 50, 7)
    assert np.array_equal(first, seeded_subsample(1000, 50, 7))
    assert first.size == 50 and np.all(np.diff(first) > 0)
    assert not np.array_equal(first, seeded_subsample(1000, 50, 8))


class FirstColumnSquared(MatrixDetector):
    """Toy model: the score is the square of the first (prepared) feature."""

    def _fit_matrix(self, M: np.ndarray) -> None:
        self.n_columns_ = M.shape[1]

    def _score_matrix(self, M: np.ndarray) -> np.ndarray:
        return M[:, 0] ** 2


def test_matrix_fill_and_transforms() -> None:
    table = pl.DataFrame({
        "per_change": [None, 10.0, 30.0, None],
        "tokens": [99.0, 1.0, 1.0, None],
        "share": [None, 0.2, 0.4, float("nan")],
        "z": [-3.0, 0.0, 3.0, float("inf")],
        "flag": [True, False, None, True],
    })
    detector = FirstColumnSquared(
        features=["per_change", "share", "z", "flag"],
        transforms={"per_change": "log1p", "z": "slog1p"},
        fill={"per_change": "tokens", "flag": 0.0},
    ).fit(table)
    M = detector._matrix(table)
    # per_change: null -> tokens (99), then null -> training median of (99, 10, 30, null) = 30; then log1p
    assert np.allclose(M[:, 0], np.log1p([99.0, 10.0, 30.0, 30.0]))
    # share: null and NaN -> training median 0.3
    assert np.allclose(M[:, 1], [0.3, 0.2, 0.4, 0.3])
    # z: inf -> null -> median 0; slog1p keeps the sign
    assert np.allclose(M[:, 2], [-np.log1p(3.0), 0.0, np.log1p(3.0), 0.0])
    assert np.allclose(M[:, 3], [1.0, 0.0, 0.0, 1.0])
    assert M.flags.c_contiguous


def test_missing_feature_column_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        FirstColumnSquared(features=["nope"]).fit(pl.DataFrame({"a": [1.0]}))


def test_occlusion_credits_only_the_feature_the_model_uses() -> None:
    rng = np.random.default_rng(0)
    table = pl.DataFrame({"x": rng.normal(0, 1, 200), "y": rng.normal(0, 1, 200)})
    table = table.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(9.0).otherwise(pl.col("x")).alias("x"))
    detector = FirstColumnSquared(features=["x", "y"]).fit(table)
    contributions = detector.occlusion(table, [5])
    median_x = float(np.median(table.get_column("x").to_numpy()))
    expected = (81.0 - median_x ** 2) / detector.score_scale_
    assert contributions[0, 0] == pytest.approx(expected)
    assert contributions[0, 1] == 0.0
    evidence = detector.explain(table, [5])
    assert evidence.get_column("feature").to_list() == ["x"]
    assert evidence.get_column("text").item().startswith("x 9 vs typical")


def test_models_share_one_training_matrix(user_week_table: pl.DataFrame, config: dict) -> None:
    """Two models with the same features, fill and sampling fit on one prepared matrix exactly as
    each would on its own."""
    from detectors.ensemble import PyodEnsembleDetector
    from detectors.iforest import IsolationForestDetector

    model_cfg = dict(config["levels"]["user_week"]["model"])
    forest = IsolationForestDetector(**model_cfg, random_state=3, max_train_rows=100)
    ensemble = PyodEnsembleDetector(**model_cfg, random_state=3, max_train_rows=100)
    assert forest.preparation_key() == ensemble.preparation_key()
    training = forest.prepare(user_week_table)
    shared = ensemble.fit_decision_function(user_week_table, training)
    alone = PyodEnsembleDetector(**model_cfg, random_state=3, max_train_rows=100).fit_decision_function(user_week_table)
    assert np.array_equal(shared, alone)
    with pytest.raises(ValueError, match="prepared"):
        PyodEnsembleDetector(**model_cfg, random_state=4).fit(user_week_table, training)


def test_importing_the_detectors_loads_no_pyod_or_numba() -> None:
    import subprocess
    import sys

    code = ("import sys, detectors.scoring; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pyod', 'numba'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
