"""An ensemble of pyod detectors (HBOS + ECOD + COPOD by default) over the feature matrix."""

from __future__ import annotations

import importlib
import inspect
import warnings
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
# members whose pyod ``fit`` leaves in ``decision_scores_`` exactly what ``decision_function``
# gives for the training rows (row by row, the same arithmetic): those are not scored twice
_OWN_TRAIN_SCORE_MEMBERS = ("HBOS",)


def check_members(members: Sequence[str | Mapping[str, Any]]) -> None:
    """ValueError unless every member is a known short name or a dotted ``module.Class`` path
    (by name: nothing is imported)."""
    for spec in members:
        if isinstance(spec, Mapping) and "name" not in spec:
            raise ValueError(f"a pyod member table needs a name: {dict(spec)}")
        _member_path(_member_spec(spec)[0])


def _member_path(name: str) -> tuple[str, str]:
    module, _, cls = PYOD_MEMBERS.get(name.lower(), name).rpartition(".")
    if not module:
        raise ValueError(f"unknown pyod member {name!r}; known: {sorted(PYOD_MEMBERS)} or a dotted path")
    return module, cls


def _member_class(name: str) -> type:
    module, cls = _member_path(name)
    imported = importlib.import_module(module)
    _cache_numba_compilation(imported)
    _quiet_skewness_warning()
    return getattr(imported, cls)


def _quiet_skewness_warning() -> None:
    """Keep scipy's "precision loss" warning about the skewness of a nearly constant column (which
    ECOD and COPOD take through pyod's NaN-safe `skew`, reading it as 0) off the command's output:
    it says nothing a user can act on. One process-wide filter for that message from pyod only
    (idempotent: warnings drops an identical filter before adding it), not a catch_warnings
    block, which is not thread-safe and weeks are scored on threads."""
    warnings.filterwarnings("ignore", message="Precision loss occurred in moment calculation",
                            category=RuntimeWarning, module=r"pyod\.")


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


def ecdf_tails(
    sorted_train: np.ndarray, M: np.ndarray, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Left and right tail scores of each value of M against the training sample alone.

    pyod's ECOD/COPOD ``decision_function`` concatenates the training matrix with the
    whole batch, so a row's score depends on the other rows scored with it and costs a
    sort of (train + batch) per call. Here the batch is one row, as if each row were
    scored alone: left tail ``-log((#train <= x + 1) / (n + 1))``, right tail likewise
    with ``>=`` (tests check the result against pyod row by row). ``order``: M's argsort by
    column when already known (the training matrix, sorted once in ``fit``). Any sort order
    will do: equal values get equal counts whatever order ties are searched in, so the
    unstable sort (3x faster than the stable one) gives the same result.
    """
    n = sorted_train.shape[0]
    # -log((count + 1) / (n + 1)) for every possible count, looked up instead of recomputed
    neg_log = -np.log((np.arange(n + 1) + 1) / (n + 1))
    U_l = np.empty_like(M)
    U_r = np.empty_like(M)
    below = np.empty(M.shape[0], dtype=np.intp)
    above = np.empty(M.shape[0], dtype=np.intp)
    for j in range(M.shape[1]):
        column = np.ascontiguousarray(sorted_train[:, j])
        values = M[:, j]
        # the values searched in sorted order: numpy's binary search then walks the column once
        rank = np.argsort(values) if order is None else order[:, j]
        keys = values[rank]
        below[rank] = np.searchsorted(column, keys, side="right")
        above[rank] = n - np.searchsorted(column, keys, side="left")
        U_l[:, j] = neg_log[below]
        U_r[:, j] = neg_log[above]
    return U_l, U_r


def ecdf_skew_tail(U_l: np.ndarray, U_r: np.ndarray, skew_sign: np.ndarray) -> np.ndarray:
    """The tail on the side of each column's training skewness (pyod's ``U_skew``)."""
    return U_l * -1 * np.sign(skew_sign - 1) + U_r * np.sign(skew_sign + 1)


def ecdf_member_scores(
    kind: str, U_l: np.ndarray, U_r: np.ndarray, skew_sign: np.ndarray, U_skew: np.ndarray | None = None
) -> np.ndarray:
    """ECOD or COPOD outlier score from the tails (pyod's formulas; skewness from training;
    ``U_skew`` when already computed for the other member)."""
    if U_skew is None:
        U_skew = ecdf_skew_tail(U_l, U_r, skew_sign)
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

    def load_libraries(self) -> None:
        """Import the members' pyod modules ahead of `fit` (seconds; scoring.load_model_libraries)."""
        for spec in self.members:
            _member_class(_member_spec(spec)[0])

    def _fit_matrix(self, M: np.ndarray) -> None:
        self._fit_score_matrix(M)

    def _fit_score_matrix(self, M: np.ndarray) -> np.ndarray:
        """Fit the members and return the training rows' ensemble scores, from the raw member
        scores the normalisation is learned on (scored once)."""
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

            # sorted once: the reference columns, and the order the training rows are searched in
            order = np.argsort(M, axis=0)
            self.ecdf_reference_ = (np.take_along_axis(M, order, axis=0), np.sign(skew(M, axis=0)))
        else:
            self.ecdf_reference_, order = None, None
        train_scores = self._raw_scores(M, training=True, order=order)
        stats = [robust_location_scale(train_scores[:, i]) for i in range(train_scores.shape[1])]
        self.member_location_ = np.array([location for location, _ in stats])
        self.member_scale_ = np.array([scale for _, scale in stats])
        self.member_train_sorted_ = np.sort(train_scores, axis=0) if self.normalisation == "ecdf" else None
        return self._normalise(train_scores).mean(axis=1)

    def _raw_scores(self, M: np.ndarray, training: bool = False, order: np.ndarray | None = None) -> np.ndarray:
        """Raw score of every member (rows x members), in blocks of ``score_chunk_rows``
        (``training``: M is the matrix the members were just fitted on; ``order``: its
        argsort by column)."""
        out = np.empty((M.shape[0], len(self.members_)), dtype=np.float64)
        step = max(1, int(self.score_chunk_rows))
        for start in range(0, M.shape[0], step):
            block = M[start:start + step]
            tails = skew_tail = None
            if self.ecdf_reference_ is not None:
                block_order = order if order is not None and block.shape[0] == M.shape[0] else None
                tails = ecdf_tails(self.ecdf_reference_[0], block, block_order)
                skew_tail = ecdf_skew_tail(*tails, self.ecdf_reference_[1])
            for i, member in enumerate(self.members_):
                kind = type(member).__name__
                if kind in _ECDF_MEMBERS:
                    out[start:start + step, i] = ecdf_member_scores(kind, *tails, self.ecdf_reference_[1], skew_tail)
                elif training and kind in _OWN_TRAIN_SCORE_MEMBERS:
                    out[start:start + step, i] = member.decision_scores_[start:start + step]
                else:
                    out[start:start + step, i] = member.decision_function(block)
        return out

    def member_scores(self, M: np.ndarray) -> np.ndarray:
        """Normalised score of every member (rows x members) for a prepared matrix."""
        return self._normalise(self._raw_scores(M))

    def _normalise(self, raw: np.ndarray) -> np.ndarray:
        """Raw member scores (rows x members) on the scale chosen by ``normalisation``."""
        if self.normalisation == "ecdf":
            ref = self.member_train_sorted_
            return np.column_stack([
                np.searchsorted(ref[:, i], raw[:, i], side="right") / ref.shape[0] for i in range(raw.shape[1])
            ])
        return (raw - self.member_location_) / self.member_scale_

    def _score_matrix(self, M: np.ndarray) -> np.ndarray:
        return self.member_scores(M).mean(axis=1)
