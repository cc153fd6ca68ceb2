"""`goodhart evaluate`: score a run against a generated world's ground truth, beside two baselines."""
from __future__ import annotations

from pathlib import Path

import polars as pl

from detectors.evaluation import evaluate
from pipeline.errors import UsageError
from pipeline.storage import connect, read_sql

LEVELS = {"user_week": "user_week_scores", "session": "session_scores"}


class MissingLabelsError(UsageError):
    """The input folder has no labels/ (only generated worlds carry ground truth)."""


def evaluate_run(db_path: Path, input_dir: Path, *, fixed_k: int = 50) -> dict[str, pl.DataFrame]:
    """Metrics per level (user_week, session): one row per metric, one column per method."""
    labels_dir = input_dir / "labels"
    if not (labels_dir / "user_weeks.parquet").exists():
        raise MissingLabelsError(f"no ground truth in {labels_dir} (goodhart generate writes it)")
    user_week_labels = pl.read_parquet(labels_dir / "user_weeks.parquet")
    session_labels = pl.read_parquet(labels_dir / "sessions.parquet")
    with connect(db_path, read_only=True) as con:
        scored = {level: con.sql(f"SELECT * FROM {table}").pl() for level, table in LEVELS.items()}
    tables = {
        "user_week": evaluate(scored["user_week"], user_week_labels, "user_week", fixed_k=fixed_k),
        "session": evaluate(scored["session"], session_labels, "session", personas=user_week_labels, fixed_k=fixed_k),
    }
    out = {level: _wide(table) for level, table in tables.items()}
    if (labels_dir / "links.parquet").exists():
        out["link"] = link_metrics(db_path, labels_dir / "links.parquet")
    return out


def link_metrics(db_path: Path, true_links: Path) -> pl.DataFrame:
    """How the run's links agree with a world's true links (labels/links.parquet): a session's
    `deployed` against "a true link reaches a deployed change" (precision, recall; NULL outcomes
    counted apart), and each link method's precision. Set-wise, in DuckDB."""
    with connect(db_path, read_only=True) as con:
        con.execute("CREATE TEMP TABLE true_links AS SELECT session_id, change_id FROM read_parquet($path)",
                    {"path": str(true_links)})
        return con.sql(read_sql("pipeline", "link_metrics")).pl()


def _wide(metrics: pl.DataFrame) -> pl.DataFrame:
    methods = metrics.get_column("method").unique(maintain_order=True).to_list()
    return metrics.pivot(on="method", index="metric", values="value", aggregate_function="first").select(
        "metric", *methods
    )


def markdown_table(table: pl.DataFrame) -> str:
    """A metrics table as GitHub markdown, values to three decimals."""
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join(["---"] + ["---:"] * (table.width - 1)) + "|"
    lines = [header, rule]
    for row in table.iter_rows():
        cells = [row[0]] + ["" if v is None else f"{v:.3f}" for v in row[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
