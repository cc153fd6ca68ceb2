"""goodhart evaluate on an agentic world: per-hard-case false positives and link agreement."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from data.generate import generate_world
from flows import evaluate_run, run_local
from pipeline.settings import Settings


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    root = tmp_path_factory.mktemp("agentic")
    generate_world(root / "world", users=120, weeks=4, seed=3, style="agentic")
    run_local(root / "world", root / "g.duckdb", Settings())
    return evaluate_run(root / "g.duckdb", root / "world")


def _metrics(table: pl.DataFrame) -> dict[str, float | None]:
    return dict(zip(table.get_column("metric").to_list(), table.get_column("goodhart").to_list(), strict=True))


def test_false_positives_are_reported_per_legitimate_hard_case(evaluated: dict[str, pl.DataFrame]) -> None:
    user_week = _metrics(evaluated["user_week"])
    for case in ("reviewer", "long_migration", "research_team", "adoption_week"):
        assert 0.0 <= user_week[f"fpr_hard_case:{case}"] <= 1.0, case


def test_links_are_scored_against_the_true_links(evaluated: dict[str, pl.DataFrame]) -> None:
    links = _metrics(evaluated["link"])
    # a change or review that names the session, or merges its commit, is the truth by construction
    for method in ("explicit_session_id", "explicit_commit", "explicit_review"):
        assert links[f"link_precision:{method}"] == 1.0, method
    assert 0.0 < links["deployed_precision"] <= 1.0 and 0.0 < links["deployed_recall"] <= 1.0
    assert 0.0 < links["link_recall"] <= 1.0


def test_the_intensity_curve_scores_one_world_per_intensity(tmp_path: Path) -> None:
    from flows import intensity_curve

    curve = intensity_curve(tmp_path, users=120, weeks=4, seed=3, settings=Settings(), intensities=(0.5, 1.0))
    assert curve.columns == ["metric", "0.5", "1"]
    metrics = curve.get_column("metric").to_list()
    assert metrics[:2] == ["pr_auc", "precision_at_k_true"]
    assert any(m.startswith("recall_tactic:") for m in metrics)
    assert sorted(p.name for p in tmp_path.glob("*.duckdb")) == ["intensity-0.5.duckdb", "intensity-1.duckdb"]
    for column in ("0.5", "1"):
        assert all(v is None or 0.0 <= v <= 1.0 for v in curve.get_column(column).to_list())
