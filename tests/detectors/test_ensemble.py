"""PyodEnsembleDetector specifics: ECOD/COPOD row-independent scoring, members, normalisation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from detectors.ensemble import PyodEnsembleDetector

FEATURES = ["a", "b", "c", "d"]


def test_ecod_and_copod_score_each_row_as_pyod_does_alone(anomaly_table: tuple[pl.DataFrame, np.ndarray]) -> None:
    table = anomaly_table[0]
    detector = PyodEnsembleDetector(features=FEATURES, members=["ecod", "copod"]).fit(table)
    M = detector._matrix(table)
    rows = [0, 17, 150, 301, 305]
    raw = detector._raw_scores(M[rows])
    for i, member in enumerate(detector.members_):
        ours = raw[:, i]
        pyod = type(member)().fit(M)  # trained on every row, as the detector was
        pyod_alone = np.array([pyod.decision_function(M[r:r + 1])[0] for r in rows])
        assert np.allclose(ours, pyod_alone, rtol=1e-12, atol=1e-12), type(member).__name__


def test_scores_do_not_depend_on_the_batch(anomaly_table: tuple[pl.DataFrame, np.ndarray]) -> None:
    table = anomaly_table[0]
    detector = PyodEnsembleDetector(features=FEATURES).fit(table)
    whole = detector.decision_function(table)
    parts = np.concatenate([detector.decision_function(table[:100]), detector.decision_function(table[100:])])
    assert np.allclose(whole, parts, rtol=0, atol=1e-12)


def test_max_train_rows_bounds_the_kept_training_matrix(anomaly_table: tuple[pl.DataFrame, np.ndarray]) -> None:
    table = anomaly_table[0]
    detector = PyodEnsembleDetector(features=FEATURES, max_train_rows=120, random_state=4).fit(table)
    assert detector.n_train_ == 120
    assert detector.ecdf_reference_[0].shape[0] == 120  # the training sample ECOD and COPOD score against
    again = PyodEnsembleDetector(features=FEATURES, max_train_rows=120, random_state=4).fit(table)
    assert np.array_equal(detector.decision_function(table), again.decision_function(table))


def test_members_are_configurable(anomaly_table: tuple[pl.DataFrame, np.ndarray]) -> None:
    table = anomaly_table[0]
    detector = PyodEnsembleDetector(features=FEATURES, members=[{"name": "hbos", "n_bins": 20}]).fit(table)
    assert detector.member_names_ == ["hbos"] and detector.members_[0].n_bins == 20
    with pytest.raises(ValueError, match="unknown pyod member"):
        PyodEnsembleDetector(features=FEATURES, members=["nonsense"]).fit(table)


def test_normalisations(anomaly_table: tuple[pl.DataFrame, np.ndarray]) -> None:
    table = anomaly_table[0]
    ecdf = PyodEnsembleDetector(features=FEATURES, normalisation="ecdf").fit(table)
    member = ecdf.member_scores(ecdf._matrix(table))
    assert member.shape == (table.height, 3) and member.min() >= 0 and member.max() <= 1
    robust = PyodEnsembleDetector(features=FEATURES).fit(table)
    member = robust.member_scores(robust._matrix(table))
    assert np.allclose(np.median(member, axis=0), 0.0, atol=0.02)  # centred on the training median


def test_members_numba_code_is_cached_on_disk_so_each_process_does_not_compile_it_again(tmp_path: Path) -> None:
    fit_hbos = (
        "import numpy as np; from detectors.ensemble import _member_class; "
        "_member_class('hbos')().fit(np.random.default_rng(0).normal(size=(200, 3)))"
    )
    env = os.environ | {"NUMBA_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", fit_hbos], check=True, env=env, cwd=Path(__file__).parents[2])
    assert list(tmp_path.rglob("*hbos*.nbi")) and list(tmp_path.rglob("*hbos*.nbc"))  # index and machine code


def test_a_nearly_constant_column_fits_without_a_library_warning_on_the_terminal() -> None:
    # scipy warns of precision loss for the skewness of nearly equal values (read as 0 through
    # pyod's skew): a fresh interpreter, so no earlier warning has used up the one-time display
    fit = (
        "import numpy as np, polars as pl; from detectors.ensemble import PyodEnsembleDetector; "
        "a = np.full(200, 1e10); a[::7] += 1e-5; "
        "PyodEnsembleDetector(features=['a', 'b'], members=['ecod', 'copod'])"
        ".fit(pl.DataFrame({'a': a, 'b': np.arange(200.0)}))"
    )
    result = subprocess.run([sys.executable, "-c", fit], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
