"""An ensemble of pyod detectors (HBOS + ECOD + COPOD by default) over the feature matrix."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from detectors.base import MatrixDetector, robust_location_scale

PYOD_MEMBERS: dict[str, str] = {
    "hbos": "pyod.models.hbos.HBOS",
    "ecod": "pyod.models.ecod.ECOD",
    "copod": "pyod.models.copod.COPOD",
    "iforest": "pyod.models.iforest.IForest",
    "knn": "pyod.models.knn.KNN",
    "lof": "pyod.models.lof.LOF",
    "pca": "pyod.models.pca.PCA",
    "mcd": "pyod.models.mcd.MCD",
    "loda": "pyod.models.loda.LODA",
    "inne": "pyod.models.inne.INNE",
    "gmm": "pyod.models.gmm.GMM",
    "kde": "pyod.models.kde.KDE",
}
"""Short member names; a member may also be given as a dotted ``module.Class`` path."""

_ECDF_MEMBERS = ("ECOD", "COPOD")


def _member_class(name: str) -> type:
    path = PYOD_MEMBERS.get(name.lower(), name)
    module, _, cls = path.rpartition(".")
    if not module:
        raise ValueError(f"unknown pyod member {name!r}; known: {sorted(PYOD_MEMBERS)} or a dotted path")
    imported = importlib.import_module(module)
    _cache_numba_compilation(imported)
    return getattr(imported, cls)


def _cache_numba_compilation(module: ModuleType) -> None:
    """Keep the machine code of the module's numba functions on disk (numba's own cache, keyed by
    source and CPU; next to the module or in the user's cache folder). Otherwise every process
    compiles them again at its first fit: ~3 s for HBOS, a third of a daily run. numba is imported
    here, with the first pyod member: a command that scores nothing never loads it."""
    from numba.extending import is_jitted

    for function in vars(module).values():
        if is_jitted(function):
            try:
                function.enable_caching()
            except RuntimeError:  # no writable cache folder: compile per process, as pyod does
                pass


def _member_spec(spec: str | Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        return spec, {}
    params = dict(spec)
    return str(params.pop("name")), params


def ecdf_tails(sorted_train: np.ndarray, M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left and right tail scores of each value of M against the training sample alone.

    pyod's ECOD/COPOD ``decision_function`` concatenates the training matrix with the
    whole batch, so a row's score depends on the other rows scored with it and costs a
    sort of (train + batch) per call. Here the batch is one row, as if each row were
    scored alone: left tail ``-log((#train <= x + 1) / (n + 1))``, right tail likewise
    with ``>=`` (tests check the result against pyod row by row).
    """
    n = sorted_train.shape[0]
    U_l = np.empty_like(M)
    U_r = np.empty_like(M)
    for j in range(M.shape[1]):
        column = sorted_train[:, j]
        below = np.searchsorted(column, M[:, j], side="right")
        above = n - np.searchsorted(column, M[:, j], side="left")
        U_l[:, j] = -np.log((below + 1) / (n + 1))
        U_r[:, j] = -np.log((above + 1) / (n + 1))
    return U_l, U_r


def ecdf_member_scores(kind: str, U_l: np.ndarray, U_r: np.ndarray, skew_sign: np.ndarray) -> np.ndarray:
    """ECOD or COPOD outlier score from the tails (pyod's formulas; skewness from training)."""
    U_skew = U_l * -1 * np.sign(skew_sign - 1) + U_r * np.sign(skew_sign + 1)
    if kind == "ECOD":
        O = np.maximum(np.maximum(U_l, U_r), U_skew)
    else:
        O = np.maximum(U_skew, (U_l + U_r) / 2)
    return O.sum(axis=1)


class PyodEnsembleDetector(MatrixDetector):
    """Mean of pyod members' scores, each normalised on its own training scores.

    ``normalisation``: ``"robust_z"`` ((s - median) / (1.4826 MAD) of the member's
    training scores; keeps how extreme a row is) or ``"ecdf"`` (share of training scores
    at or below; bounded in [0, 1]). ECOD and COPOD keep their training matrix, so members
    are fitted on a seeded subsample of at most ``max_train_rows`` rows; new rows are
    scored against that sample one row at a time (``ecdf_tails``), so a row's score does
    not depend on the rows scored with it. Scoring runs in blocks of ``score_chunk_rows``
    to bound memory.
    """

    detector_name = "ensemble"

    def __init__(
        self,
        features: Sequence[str] = (),
        transforms: Mapping[str, str] | None = None,
        fill: Mapping[str, str | float] | None = None,
        members: Sequence[str | Mapping[str, Any]] = ("hbos", "ecod", "copod"),
        normalisation: str = "robust_z",
        max_train_rows: int | None = 100_000,
        random_state: int | None = 0,
        score_chunk_rows: int = 100_000,
    ) -> None:
        super().__init__(features, transforms, fill, max_train_rows, random_state)
        self.members = members
        self.normalisation = normalisation
        self.score_chunk_rows = score_chunk_rows

    def _fit_matrix(self, M: np.ndarray) -> None:
        if not self.members:
            raise ValueError("PyodEnsembleDetector needs at least one member")
        if self.normalisation not in ("robust_z", "ecdf"):
            raise ValueError(f"unknown normalisation {self.normalisation!r}; use robust_z or ecdf")
        self.members_: list[Any] = []
        self.member_names_: list[str] = []
        for spec in self.members:
            name, params = _member_spec(spec)
            cls = _member_class(name)
            if "random_state" in inspect.signature(cls).parameters and "random_state" not in params:
                params["random_state"] = self.random_state
            member = cls(**params)
            # ECOD and COPOD are scored here (ecdf_tails), against the training sample sorted by
            # column with pyod's NaN-safe skewness of it: pyod's own fit would score every
            # training row for nothing
            self.members_.append(member if cls.__name__ in _ECDF_MEMBERS else member.fit(M))
            self.member_names_.append(name)
        if any(type(m).__name__ in _ECDF_MEMBERS for m in self.members_):
            from pyod.models.ecod import skew

            self.ecdf_reference_ = (np.sort(M, axis=0), np.sign(skew(M, axis=0)))
        else:
            self.ecdf_reference_ = None
        train_scores = self._raw_scores(M)
        stats = [robust_location_scale(train_scores[:, i]) for i in range(train_scores.shape[1])]
        self.member_location_ = np.array([location for location, _ in stats])
        self.member_scale_ = np.array([scale for _, scale in stats])
        self.member_train_sorted_ = np.sort(train_scores, axis=0) if self.normalisation == "ecdf" else None

    def _raw_scores(self, M: np.ndarray) -> np.ndarray:
        """Raw score of every member (rows x members), in blocks of ``score_chunk_rows``."""
        out = np.empty((M.shape[0], len(self.members_)), dtype=np.float64)
        step = max(1, int(self.score_chunk_rows))
        for start in range(0, M.shape[0], step):
            block = M[start:start + step]
            tails = ecdf_tails(self.ecdf_reference_[0], block) if self.ecdf_reference_ is not None else None
            for i, member in enumerate(self.members_):
                kind = type(member).__name__
                if kind in _ECDF_MEMBERS:
                    out[start:start + step, i] = ecdf_member_scores(kind, *tails, self.ecdf_reference_[1])
                else:
                    out[start:start + step, i] = member.decision_function(block)
        return out

    def member_scores(self, M: np.ndarray) -> np.ndarray:
        """Normalised score of every member (rows x members) for a prepared matrix."""
        raw = self._raw_scores(M)
        if self.normalisation == "ecdf":
            ref = self.member_train_sorted_
            return np.column_stack([
                np.searchsorted(ref[:, i], raw[:, i], side="right") / ref.shape[0] for i in range(raw.shape[1])
            ])
        return (raw - self.member_location_) / self.member_scale_

    def _score_matrix(self, M: np.ndarray) -> np.ndarray:
        return self.member_scores(M).mean(axis=1)
