"""goodhart evaluate on an agentic world: per-hard-case false positives and link agreement."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from data.generate import generate_world
from pipeline.evaluate import evaluate_run
from pipeline.settings import Settings
from pipeline.stages import run_local


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
