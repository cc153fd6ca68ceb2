"""Shared detector machinery: the base class, the numeric feature matrix, occlusion
attribution, robust statistics and the models' evidence (worded by `detectors.wording`).

Every detector follows the scikit-learn / pyod conventions: the constructor only stores its parameters,
``fit`` learns state into attributes ending in ``_`` and returns ``self``, ``decision_function`` gives one
score per row (higher = more suspicious), ``explain`` long-format evidence (one row per (row, feature))."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from detectors.params import Parameters
from detectors.wording import format_by_feature, label_expr

EVIDENCE_SCHEMA: dict[str, pl.DataType] = {
    "row": pl.Int64,
    "detector": pl.String,
    "feature": pl.String,
    "value": pl.Float64,
    "baseline": pl.Float64,
    "contribution": pl.Float64,
    "text": pl.String,
}
"""Long-format evidence: ``row`` indexes the frame given to ``explain``."""
EVIDENCE_NUMBERS_SCHEMA: dict[str, pl.DataType] = {
    **{k: v for k, v in EVIDENCE_SCHEMA.items() if k != "text"}, "missing": pl.Boolean, "team": pl.Boolean,
}
"""A model's evidence before it is worded (``MatrixDetector.explain_numbers``)."""

MAD_TO_SIGMA = 1.4826


def empty_evidence() -> pl.DataFrame:
    """An evidence frame with no rows."""
    return pl.DataFrame(schema=EVIDENCE_SCHEMA)


def as_rows(rows: Sequence[int] | np.ndarray | None, n: int) -> np.ndarray:
    """Row indices as an int64 array; ``None`` means every row."""
    if rows is None:
        return np.arange(n, dtype=np.int64)
    out = np.asarray(rows, dtype=np.int64).reshape(-1)
    if out.size and (out.min() < 0 or out.max() >= n):
        raise IndexError(f"rows out of range for a frame of {n} rows")
    return out


def seeded_subsample(n: int, max_rows: int | None, random_state: int | None) -> np.ndarray | None:
    """Sorted indices of a seeded subsample of ``max_rows`` out of ``n``; None when all fit."""
    if max_rows is None or n <= max_rows:
        return None
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n, size=int(max_rows), replace=False))


def robust_location_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826 x MAD; falls back to the standard deviation, then 1, when flat."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    median = float(np.median(finite))
    scale = MAD_TO_SIGMA * float(np.median(np.abs(finite - median)))
    if not scale > 1e-12:
        scale = float(np.std(finite))
    if not scale > 1e-12:
        scale = 1.0
    return median, scale


# --------------------------------------------------------------------------- base classes


@dataclass(frozen=True)
class TrainingMatrix:
    """What ``MatrixDetector.prepare`` builds from a table: the model matrix of its (sampled)
    training rows, with the fill values and medians learned on them. Models with the same
    features, fill and sampling share one (``detectors.scoring`` fits both models on it)."""

    key: tuple[Any, ...]
    every_row: bool
    fill_values: Mapping[str, float]
    raw_median: Mapping[str, float]
    matrix: np.ndarray
    train_median: np.ndarray


class BaseDetector(Parameters, ABC):
    """Base of every detector (scikit-learn estimator conventions, pyod's API shape)."""

    detector_name: ClassVar[str] = "detector"

    @abstractmethod
    def fit(self, X: pl.DataFrame) -> Self:
        """Learn from the feature table; return self."""

    @abstractmethod
    def decision_function(self, X: pl.DataFrame) -> np.ndarray:
        """One score per row of X; higher = more suspicious."""

    @abstractmethod
    def explain(
        self, X: pl.DataFrame, rows: Sequence[int] | np.ndarray | None = None, top_k: int = 3
    ) -> pl.DataFrame:
        """Evidence (``EVIDENCE_SCHEMA``) for the given rows of X (all rows when None)."""

    def _check_fitted(self) -> None:
        if not any(k.endswith("_") and not k.startswith("_") for k in vars(self)):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")


class MatrixDetector(BaseDetector):
    """A model over a numeric matrix built from configurable feature columns.

    Each feature is cast to float (booleans to 0/1; NaN and inf become null), filled
    (``fill``: another column's name, a number, or ``"median"``, the training median, which
    is also the fallback for whatever is still null), then transformed (``transforms``:
    ``"log1p"`` for non-negative volumes, ``"slog1p"`` = sign(x) log1p(|x|) for robust z
    columns, or ``"none"``). Scores are also put on a robust scale learned from the
    training rows (``robust_z``). ``explain`` is occlusion attribution: each feature of the
    asked rows is in turn replaced by its training median, and its contribution is how much
    the score drops, in robust-z units of this detector's training scores.
    """

    def __init__(
        self,
        features: Sequence[str] = (),
        transforms: Mapping[str, str] | None = None,
        fill: Mapping[str, str | float] | None = None,
        max_train_rows: int | None = 200_000,
        random_state: int | None = 0,
    ) -> None:
        self.features = features
        self.transforms = transforms
        self.fill = fill
        self.max_train_rows = max_train_rows
        self.random_state = random_state

    # subclasses implement the model on the prepared matrix
    @abstractmethod
    def _fit_matrix(self, M: np.ndarray) -> None: ...

    @abstractmethod
    def _score_matrix(self, M: np.ndarray) -> np.ndarray: ...

    def _fit_score_matrix(self, M: np.ndarray) -> np.ndarray:
        """Fit on M and return the scores of M's rows; a model that scores its training rows
        while fitting overrides this so they are not scored twice."""
        self._fit_matrix(M)
        return self._score_matrix(M)

    def _raw_expr(self, name: str) -> pl.Expr:
        value = pl.col(name).cast(pl.Float64)
        value = pl.when(value.is_finite()).then(value)
        spec = (self.fill or {}).get(name, "median")
        if isinstance(spec, bool):
            spec = float(spec)
        if isinstance(spec, (int, float)):
            value = value.fill_null(float(spec))
        elif spec != "median":
            other = pl.col(spec).cast(pl.Float64)
            value = value.fill_null(pl.when(other.is_finite()).then(other))
        return value

    def _transform(self, name: str, value: pl.Expr) -> pl.Expr:
        kind = (self.transforms or {}).get(name, "none")
        if kind == "log1p":
            return value.clip(lower_bound=0.0).log1p()
        if kind == "slog1p":
            return value.sign() * value.abs().log1p()
        if kind == "none":
            return value
        raise ValueError(f"unknown transform {kind!r} for {name}; use log1p, slog1p or none")

    def _needed_columns(self) -> list[str]:
        needed = list(self.features)
        for spec in (self.fill or {}).values():
            if isinstance(spec, str) and spec != "median":
                needed.append(spec)
        return needed

    def _matrix(self, X: pl.DataFrame, fill_values: Mapping[str, float] | None = None) -> np.ndarray:
        fills = self.fill_values_ if fill_values is None else fill_values
        exprs = [self._transform(f, self._raw_expr(f).fill_null(fills[f])).alias(f) for f in self.features]
        # C order always: pyod's numba kernels compile once per array layout
        return np.ascontiguousarray(X.select(exprs).to_numpy(), dtype=np.float64)

    def preparation_key(self) -> tuple[Any, ...]:
        """Detectors with equal keys build the same training matrix from the same table."""
        return (tuple(self.features), repr(sorted((self.transforms or {}).items())),
                repr(sorted((self.fill or {}).items())), self.max_train_rows, self.random_state)

    def prepare(self, X: pl.DataFrame) -> TrainingMatrix:
        """The training matrix of X (sample, fill values, medians); learns nothing itself, so
        detectors with the same ``preparation_key`` can share it (``fit(X, training=...)``)."""
        if not self.features:
            raise ValueError(f"{type(self).__name__} needs a non-empty feature list")
        missing = sorted(set(self._needed_columns()) - set(X.columns))
        if missing:
            raise ValueError(f"{type(self).__name__}: feature table lacks columns {missing}")
        if X.height == 0:
            raise ValueError(f"{type(self).__name__} cannot fit on an empty table")
        sample = seeded_subsample(X.height, self.max_train_rows, self.random_state)
        train = X if sample is None else X[sample]
        medians = train.select(
            [self._raw_expr(f).median().alias(f) for f in self.features]
            + [pl.col(f).cast(pl.Float64).median().alias(f"__raw_{f}") for f in self.features]
        ).row(0, named=True)
        fill_values = {f: (0.0 if medians[f] is None else float(medians[f])) for f in self.features}
        raw_median = {f: (fill_values[f] if medians[f"__raw_{f}"] is None else float(medians[f"__raw_{f}"]))
                      for f in self.features}
        M = self._matrix(train, fill_values)
        return TrainingMatrix(self.preparation_key(), sample is None, fill_values, raw_median, M,
                              np.median(M, axis=0))

    def fit(self, X: pl.DataFrame, training: TrainingMatrix | None = None) -> Self:
        """Learn fill values, the model and the robust scale of its training scores
        (``training``: ``prepare(X)`` of a detector with the same ``preparation_key``)."""
        if training is None:
            training = self.prepare(X)
        elif training.key != self.preparation_key():
            raise ValueError("training matrix prepared with other features, fill or sampling")
        self.fill_values_ = dict(training.fill_values)
        self.raw_median_ = dict(training.raw_median)
        M = training.matrix
        self.feature_names_in_ = np.asarray(self.features, dtype=object)
        self.n_train_ = M.shape[0]
        self.train_median_ = training.train_median.copy()
        self.decision_scores_ = self._fit_score_matrix(M)  # pyod's name: the training rows' scores
        self.trained_on_every_row_ = training.every_row
        self.score_median_, self.score_scale_ = robust_location_scale(self.decision_scores_)
        return self

    def fit_decision_function(self, X: pl.DataFrame, training: TrainingMatrix | None = None) -> np.ndarray:
        """``fit(X)`` then ``decision_function(X)``, without scoring the rows twice when every
        row was trained on (the same numbers either way)."""
        self.fit(X, training)
        return self.decision_scores_.copy() if self.trained_on_every_row_ else self.decision_function(X)

    def decision_function(self, X: pl.DataFrame) -> np.ndarray:
        self._check_fitted()
        if X.height == 0:
            return np.empty(0, dtype=np.float64)
        return self._score_matrix(self._matrix(X))

    def robust_z(self, scores: np.ndarray) -> np.ndarray:
        """Scores on the robust scale of the training scores: (s - median) / (1.4826 MAD)."""
        self._check_fitted()
        return (np.asarray(scores, dtype=np.float64) - self.score_median_) / self.score_scale_

    def occlusion(self, X: pl.DataFrame, rows: Sequence[int] | np.ndarray | None = None,
                  batch_rows: int = 4096) -> np.ndarray:
        """Contribution matrix (rows x features): score drop when each feature is set to its
        training median, in robust-z units. Positive = the feature made the row more suspicious."""
        self._check_fitted()
        idx = as_rows(rows, X.height)
        n_f = len(self.features)
        out = np.zeros((idx.size, n_f), dtype=np.float64)
        if idx.size == 0:
            return out
        M = self._matrix(X[idx])
        features = np.arange(n_f)
        for start in range(0, idx.size, batch_rows):
            block = M[start:start + batch_rows]
            # copy 0 as it is, copy 1 + j with feature j occluded, all scored in one call (a row's
            # score does not depend on the rows scored with it)
            stacked = np.repeat(block[None, :, :], n_f + 1, axis=0)  # (copy, row, column)
            stacked[features + 1, :, features] = self.train_median_[:, None]
            scores = self._score_matrix(stacked.reshape(-1, n_f)).reshape(n_f + 1, block.shape[0])
            out[start:start + block.shape[0]] = (scores[0][None, :] - scores[1:]).T
        return out / self.score_scale_

    def explain(
        self, X: pl.DataFrame, rows: Sequence[int] | np.ndarray | None = None, top_k: int = 3
    ) -> pl.DataFrame:
        """The ``top_k`` features with the largest positive occlusion contribution per row.

        ``value`` is the value the model saw before its transform (a null shows as the fill
        it was given, and the text says so); ``baseline`` is ``<feature>_team_median`` when
        the table has it, else the training median of the raw feature.
        """
        return evidence_text(self.explain_numbers(X, rows, top_k))

    def explain_numbers(
        self, X: pl.DataFrame, rows: Sequence[int] | np.ndarray | None = None, top_k: int = 3
    ) -> pl.DataFrame:
        """``explain`` without its text: the evidence columns but ``text``, with ``missing`` (the
        value was null) and ``team`` (the baseline is the team median) that ``evidence_text``
        words. Frames of several fits are worded in one call (`detectors.scoring`)."""
        idx = as_rows(rows, X.height)
        if idx.size == 0:
            return pl.DataFrame(schema=EVIDENCE_NUMBERS_SCHEMA)
        contrib = self.occlusion(X, idx)
        k = max(1, min(int(top_k), len(self.features)))
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(contrib, order, axis=1)
        row_pos, rank = np.nonzero(top > 0)
        if row_pos.size == 0:
            return pl.DataFrame(schema=EVIDENCE_NUMBERS_SCHEMA)
        feat_idx = order[row_pos, rank]
        used = [self.features[j] for j in np.unique(feat_idx)]
        sub = X[idx]
        seen = sub.select([self._raw_expr(f).fill_null(self.fill_values_[f]).alias(f) for f in used])
        was_null = sub.select([pl.col(f).cast(pl.Float64).is_finite().fill_null(False).not_().alias(f) for f in used])
        baseline_cols = sub.select([
            (pl.col(f"{f}_team_median").cast(pl.Float64) if f"{f}_team_median" in sub.columns
             else pl.repeat(self.raw_median_[f], pl.len(), dtype=pl.Float64)).alias(f) for f in used
        ])
        n_out = row_pos.size
        values, baselines = np.empty(n_out), np.empty(n_out)
        missing, team_baseline = np.zeros(n_out, dtype=bool), np.zeros(n_out, dtype=bool)
        for name in used:
            sel = np.asarray(self.features, dtype=object)[feat_idx] == name
            values[sel] = seen.get_column(name).to_numpy()[row_pos[sel]]
            missing[sel] = was_null.get_column(name).to_numpy()[row_pos[sel]]
            baselines[sel] = baseline_cols.get_column(name).to_numpy()[row_pos[sel]]
            team_baseline[sel] = f"{name}_team_median" in sub.columns
        frame = pl.DataFrame({
            "row": idx[row_pos],
            "detector": [self.detector_name] * n_out,
            "feature": [self.features[j] for j in feat_idx],
            "value": values,
            "baseline": baselines,
            "contribution": top[row_pos, rank],
            "missing": missing,
            "team": team_baseline,
        }, schema=EVIDENCE_NUMBERS_SCHEMA)
        return frame.with_columns(pl.col("value", "baseline").fill_nan(None))


def evidence_text(numbers: pl.DataFrame) -> pl.DataFrame:
    """Evidence rows (``EVIDENCE_SCHEMA``) of ``MatrixDetector.explain_numbers`` frames: each
    feature's label, value and baseline in words."""
    value_text = format_by_feature(pl.col("feature"), pl.col("value"))
    text = pl.concat_str(
        label_expr(pl.col("feature")), pl.lit(" "),
        pl.when(pl.col("missing")).then(pl.concat_str(pl.lit("n/a (taken as "), value_text, pl.lit(")")))
        .otherwise(value_text),
        pl.when(pl.col("team")).then(pl.lit(" vs team median ")).otherwise(pl.lit(" vs typical ")),
        format_by_feature(pl.col("feature"), pl.col("baseline")),
    )
    return numbers.with_columns(text=text).select(list(EVIDENCE_SCHEMA)).cast(EVIDENCE_SCHEMA)
