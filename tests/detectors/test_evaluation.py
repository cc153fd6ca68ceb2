"""Evaluation metrics on a tiny hand-made example with hand-computed values."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from detectors.evaluation import METRICS_SCHEMA, evaluate, precision_at_k, top_k_flags

WEEK = date(2025, 3, 3)


def tiny() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Six user-weeks: two gamers (rows 0 and 2), a heavy shipper and an explorer."""
    scored = pl.DataFrame({
        "user_id": ["g1", "hs", "g2", "ex", "n1", "n2"],
        "week_start": [WEEK] * 6,
        "tokens": [10.0, 60.0, 20.0, 50.0, 40.0, 30.0],
        "requests": [1.0, 6.0, 2.0, 5.0, 4.0, 3.0],
        "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],
        "flagged": [True, True, False, False, False, False],
    })
    labels = pl.DataFrame({
        "user_id": ["g1", "hs", "g2", "ex", "n1", "n2"],
        "week_start": [WEEK] * 6,
        "persona": ["looper", "heavy_shipper", "idler", "explorer", "normal", "normal"],
        "is_gaming": [True, False, True, False, False, False],
        "tactic": ["prompt_loop", None, "idle_agent", None, None, None],
    })
    return scored, labels


def metrics(table: pl.DataFrame, method: str) -> dict[str, float | None]:
    rows = table.filter(pl.col("method") == method)
    return dict(zip(rows.get_column("metric").to_list(), rows.get_column("value").to_list(), strict=True))


def test_pipeline_metrics_by_hand() -> None:
    table = evaluate(*tiny(), level="user_week", fixed_k=3)
    assert table.schema == pl.Schema(METRICS_SCHEMA)
    m = metrics(table, "goodhart")
    # ROC-AUC: of 2 x 4 (gaming, legit) pairs, the gamer scores higher in 4 + 3 = 7
    assert m["roc_auc"] == pytest.approx(7 / 8)
    # average precision: gamers at ranks 1 and 3 -> (1/1 + 2/3) / 2
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["precision_at_k_true"] == pytest.approx(1 / 2)  # k = 2 gamers: g1, hs
    assert m["precision_at_3"] == pytest.approx(2 / 3)
    assert m["flagged"] == 2 and m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)
    assert m["recall_tactic:prompt_loop"] == 1.0 and m["recall_tactic:idle_agent"] == 0.0
    assert m["fpr_legit"] == pytest.approx(1 / 4)
    assert m["fpr_hard_cases"] == pytest.approx(1 / 2)
    assert m["fpr_persona:heavy_shipper"] == 1.0 and m["fpr_persona:explorer"] == 0.0
    assert "fpr_persona:oncall" not in m  # no such rows


def test_raw_token_leaderboard_baseline_by_hand() -> None:
    m = metrics(evaluate(*tiny(), level="user_week", fixed_k=3), "raw_tokens")
    # both gamers have the fewest tokens: every pair is ranked wrong
    assert m["roc_auc"] == 0.0
    assert m["pr_auc"] == pytest.approx((1 / 5 + 2 / 6) / 2)
    assert m["precision_at_k_true"] == 0.0
    # equal review budget: the leaderboard flags its top 2 (hs, ex), both legit hard cases
    assert m["flagged"] == 2 and m["recall"] == 0.0 and m["fpr_hard_cases"] == 1.0


def test_volume_iforest_baseline_runs_on_the_same_rows() -> None:
    table = evaluate(*tiny(), level="user_week", fixed_k=3, random_state=1)
    m = metrics(table, "iforest_raw_volume")
    assert 0.0 <= m["roc_auc"] <= 1.0 and m["flagged"] == 2
    assert table.equals(evaluate(*tiny(), level="user_week", fixed_k=3, random_state=1))
    assert set(table.get_column("method")) == {"goodhart", "raw_tokens", "iforest_raw_volume"}


def test_metrics_do_not_depend_on_the_row_order_of_the_scored_table() -> None:
    # more rows than the forest's 256-row subsample, so which rows it draws depends on their order
    n = 400
    users = [f"u{i:03d}" for i in range(n)]
    tokens = [float((i * 7919) % 1000) for i in range(n)]
    scored = pl.DataFrame({"user_id": users, "week_start": [WEEK] * n, "tokens": tokens,
                           "requests": [t / 10 for t in tokens], "score": [t / 1000 for t in tokens],
                           "flagged": [t > 950 for t in tokens]})
    labels = pl.DataFrame({"user_id": users, "week_start": [WEEK] * n, "persona": ["normal"] * n,
                           "is_gaming": [t > 900 for t in tokens], "tactic": [None] * n})
    table = evaluate(scored, labels, level="user_week", random_state=1)
    assert table.equals(evaluate(scored.reverse(), labels, level="user_week", random_state=1))


def test_unlabelled_rows_count_as_legit_and_sessions_get_personas() -> None:
    scored = pl.DataFrame({
        "session_id": ["s1", "s2", "s3"], "user_id": ["g1", "ex", "n1"], "week_start": [WEEK] * 3,
        "tokens": [5.0, 9.0, 1.0], "score": [0.9, 0.2, 0.1], "flagged": [True, True, False],
    })
    labels = pl.DataFrame({"session_id": ["s1"], "is_gaming": [True], "tactic": ["prompt_loop"]})
    personas = tiny()[1].select("user_id", "week_start", "persona")
    m = metrics(evaluate(scored, labels, level="session", personas=personas, fixed_k=2), "goodhart")
    assert m["roc_auc"] == 1.0 and m["fpr_legit"] == pytest.approx(1 / 2)
    assert m["fpr_persona:explorer"] == 1.0


def test_helpers() -> None:
    import numpy as np

    assert top_k_flags(np.array([0.1, 0.5, 0.5, 0.2]), 2).tolist() == [False, True, True, False]
    assert precision_at_k(np.array([1, 0, 0]), np.array([0.3, 0.2, 0.1]), 10) == pytest.approx(1 / 3)
    assert precision_at_k(np.array([1]), np.array([0.3]), 0) is None
