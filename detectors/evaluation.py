"""Metrics of scored rows against ground-truth labels, for ``goodhart evaluate``.

Three methods are measured on the same rows:

* ``goodhart``: the pipeline's ``score`` and ``flagged``;
* ``raw_tokens``: ranking by tokens, i.e. the leaderboard itself;
* ``iforest_raw_volume``: a scikit-learn IsolationForest on raw volume counts
  (tokens, requests, prompts, sessions, cost_usd; those present), seeded.

The baselines have no flag of their own, so they flag their top rows, as many as the
pipeline flagged (an equal review budget); their ranking metrics need no flag.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score

HARD_CASE_PERSONAS = ("heavy_shipper", "explorer", "new_hire", "oncall", "on_call", "non_ai_merger", "manual_coder")
"""Legitimate personas that look like gaming at a glance (both the brief's and the sample world's names)."""
VOLUME_COLUMNS = ("tokens", "requests", "prompts", "sessions", "cost_usd")
METRICS_SCHEMA = {"method": pl.String, "metric": pl.String, "value": pl.Float64, "n": pl.Int64}


def level_keys(level: str) -> list[str]:
    """Row keys of a level."""
    if level == "user_week":
        return ["user_id", "week_start"]
    if level == "session":
        return ["session_id"]
    raise ValueError(f"level must be user_week or session, not {level!r}")


def label_rows(scored: pl.DataFrame, labels: pl.DataFrame, level: str,
               personas: pl.DataFrame | None = None) -> pl.DataFrame:
    """Scored rows with ``is_gaming``, ``tactic``, ``persona`` and ``hard_cases`` (the legitimate
    hard cases of an agentic world: reviewer, long_migration, ...; empty elsewhere) attached.

    Rows without a label count as legitimate (a generated world may label only its
    gamers). At session level, ``personas`` (user_id, week_start, persona: the user-week
    labels) gives each session its person's persona when the session labels lack one.
    """
    keys = level_keys(level)
    wanted = [c for c in ("is_gaming", "tactic", "persona", "hard_cases") if c in labels.columns]
    labelled = scored.join(labels.select(keys + wanted).unique(keys, keep="first"), on=keys, how="left",
                           maintain_order="left")
    inherited = [c for c in ("persona", "hard_cases")
                 if c not in labelled.columns and personas is not None and c in personas.columns]
    if inherited and {"user_id", "week_start"} <= set(labelled.columns):
        labelled = labelled.join(
            personas.select("user_id", "week_start", *inherited).unique(["user_id", "week_start"], keep="first"),
            on=["user_id", "week_start"], how="left", maintain_order="left",
        )
    if "hard_cases" not in labelled.columns:
        labelled = labelled.with_columns(pl.lit([], dtype=pl.List(pl.String)).alias("hard_cases"))
    for name, dtype in (("tactic", pl.String), ("persona", pl.String)):
        if name not in labelled.columns:
            labelled = labelled.with_columns(pl.lit(None, dtype=dtype).alias(name))
    return labelled.with_columns(pl.col("is_gaming").cast(pl.Boolean).fill_null(False)
                                 if "is_gaming" in labelled.columns else pl.lit(False).alias("is_gaming"))


def top_k_flags(score: np.ndarray, k: int) -> np.ndarray:
    """True for the k highest scores (ties broken by row order)."""
    flags = np.zeros(score.size, dtype=bool)
    if k > 0:
        flags[np.argsort(-score, kind="stable")[:k]] = True
    return flags


def precision_at_k(y_true: np.ndarray, score: np.ndarray, k: int) -> float | None:
    """Share of gaming rows among the k highest scores (ties broken by row order)."""
    k = min(int(k), y_true.size)
    if k <= 0:
        return None
    return float(y_true[np.argsort(-score, kind="stable")[:k]].mean())


def _ranking(y: np.ndarray, score: np.ndarray, fixed_k: int) -> list[tuple[str, float | None, int]]:
    both = 0 < y.sum() < y.size
    n_true = int(y.sum())
    return [
        ("roc_auc", float(roc_auc_score(y, score)) if both else None, y.size),
        ("pr_auc", float(average_precision_score(y, score)) if both else None, y.size),
        ("precision_at_k_true", precision_at_k(y, score, n_true), n_true),
        (f"precision_at_{fixed_k}", precision_at_k(y, score, fixed_k), min(fixed_k, y.size)),
    ]


def _flag_metrics(rows: pl.DataFrame, flagged: np.ndarray,
                  hard_personas: Sequence[str]) -> list[tuple[str, float | None, int]]:
    y = rows.get_column("is_gaming").to_numpy().astype(bool)
    persona, tactic = rows.get_column("persona"), rows.get_column("tactic")
    legit = ~y
    cases = rows.get_column("hard_cases").fill_null([])
    in_case = {name: cases.list.contains(name).to_numpy().astype(bool)
               for name in sorted({c for listed in cases.to_list() for c in listed})}
    hard = legit & (persona.is_in(list(hard_personas)).fill_null(False).to_numpy()
                    | (cases.list.len() > 0).to_numpy())

    def share(mask: np.ndarray) -> tuple[float | None, int]:
        n = int(mask.sum())
        return (float(flagged[mask].mean()) if n else None), n

    out: list[tuple[str, float | None, int]] = [
        ("flagged", float(flagged.sum()), flagged.size),
        ("precision", float(y[flagged].mean()) if flagged.any() else None, int(flagged.sum())),
        ("recall", *share(y)),
        ("fpr_legit", *share(legit)),
        ("fpr_hard_cases", *share(hard)),
    ]
    for name in sorted(t for t in tactic.filter(pl.Series(y)).unique().to_list() if t is not None):
        out.append((f"recall_tactic:{name}", *share(y & (tactic == name).fill_null(False).to_numpy())))
    for name in hard_personas:
        mask = legit & (persona == name).fill_null(False).to_numpy()
        if mask.any():
            out.append((f"fpr_persona:{name}", *share(mask)))
    for name, mask in in_case.items():
        if (legit & mask).any():
            out.append((f"fpr_hard_case:{name}", *share(legit & mask)))
    return out


def volume_iforest_scores(rows: pl.DataFrame, random_state: int = 0, n_estimators: int = 100) -> np.ndarray:
    """Baseline: IsolationForest anomaly score on the raw volume counts present."""
    columns = [c for c in VOLUME_COLUMNS if c in rows.columns]
    if not columns:
        raise ValueError(f"no volume column ({', '.join(VOLUME_COLUMNS)}) to run the baseline on")
    X = rows.select(pl.col(columns).cast(pl.Float64).fill_null(0.0).fill_nan(0.0)).to_numpy()
    model = IsolationForest(n_estimators=n_estimators, random_state=random_state).fit(X)
    return -model.score_samples(X)


def evaluate(
    scored: pl.DataFrame,
    labels: pl.DataFrame,
    level: str = "user_week",
    features: pl.DataFrame | None = None,
    personas: pl.DataFrame | None = None,
    fixed_k: int = 50,
    random_state: int = 0,
    hard_personas: Sequence[str] = HARD_CASE_PERSONAS,
) -> pl.DataFrame:
    """Tidy metrics table (method, metric, value, n) for the pipeline and two baselines.

    ``scored`` is ``score_level`` output (or the published score table); volume columns
    missing from it are taken from ``features`` by key. ``n`` is the number of rows a
    metric is computed over (for ``precision_at_*``, k).
    """
    keys = level_keys(level)
    rows = label_rows(scored, labels, level, personas)
    if features is not None:
        extra = [c for c in VOLUME_COLUMNS if c in features.columns and c not in rows.columns]
        if extra:
            rows = rows.join(features.select(keys + extra).unique(keys, keep="first"), on=keys, how="left",
                             maintain_order="left")
    if rows.height == 0:
        return pl.DataFrame(schema=METRICS_SCHEMA)
    rows = rows.sort(keys)  # the published table's row order varies; the seeded baseline must not
    y = rows.get_column("is_gaming").to_numpy().astype(bool)
    flagged = rows.get_column("flagged").fill_null(False).to_numpy().astype(bool)
    budget = int(flagged.sum())
    methods = {
        "goodhart": (rows.get_column("score").fill_null(0.0).to_numpy(), flagged),
        "raw_tokens": (rows.get_column("tokens").cast(pl.Float64).fill_null(0.0).to_numpy(), None),
        "iforest_raw_volume": (volume_iforest_scores(rows, random_state), None),
    }
    records = []
    for method, (score, flags) in methods.items():
        flags = top_k_flags(score, budget) if flags is None else flags
        for metric, value, n in _ranking(y, score, fixed_k) + _flag_metrics(rows, flags, hard_personas):
            records.append({"method": method, "metric": metric, "value": value, "n": n})
    return pl.DataFrame(records, schema=METRICS_SCHEMA)
