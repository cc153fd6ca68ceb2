"""Isolation forest over the configurable feature matrix (scikit-learn IsolationForest)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from detectors.base import MatrixDetector

# Below this many rows, scoring in one thread is faster than splitting.
_PARALLEL_MIN_ROWS = 50_000


class IsolationForestDetector(MatrixDetector):
    """Rows that few random splits isolate are suspicious.

    The score is scikit-learn's anomaly score ``-score_samples`` in (0, 1]. Large tables
    are scored in row blocks on ``n_jobs`` threads: every row's path lengths are summed in
    the same tree order as single-threaded scoring, so results are bit-identical (joblib's
    threading backend sums trees from several threads and is not).
    """

    detector_name = "iforest"

    def __init__(
        self,
        features: Sequence[str] = (),
        transforms: Mapping[str, str] | None = None,
        fill: Mapping[str, str | float] | None = None,
        n_estimators: int = 100,
        max_samples: int | float | str = 256,
        max_features: float = 1.0,
        max_train_rows: int | None = 200_000,
        random_state: int | None = 0,
        n_jobs: int = 2,
    ) -> None:
        super().__init__(features, transforms, fill, max_train_rows, random_state)
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.n_jobs = n_jobs

    def load_libraries(self) -> None:
        """Import scikit-learn's ensemble ahead of `fit` (seconds; scoring.load_model_libraries)."""
        import sklearn.ensemble  # noqa: F401

    def _fit_matrix(self, M: np.ndarray) -> None:
        from sklearn.ensemble import IsolationForest  # here, so importing the detectors loads no sklearn

        max_samples = self.max_samples
        if isinstance(max_samples, int) and not isinstance(max_samples, bool):
            max_samples = min(max_samples, M.shape[0])
        self.model_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=max_samples,
            max_features=self.max_features,
            random_state=self.random_state,
        ).fit(M)

    def _score_matrix(self, M: np.ndarray) -> np.ndarray:
        n = M.shape[0]
        if self.n_jobs <= 1 or n < _PARALLEL_MIN_ROWS:
            return -self.model_.score_samples(M)
        blocks = np.array_split(np.arange(n), max(self.n_jobs * 4, 1))
        with ThreadPoolExecutor(self.n_jobs) as pool:
            parts = list(pool.map(lambda b: self.model_.score_samples(M[b[0]:b[-1] + 1]), blocks))
        return -np.concatenate(parts)
