"""`goodhart evaluate`: score a run against a generated world's ground truth, beside two baselines.

The metrics are the detectors' (detectors.evaluation.evaluate) and the run is the pipeline's:
flows.py hands both in (flows.evaluate_run, flows.intensity_curve); this side reads the
databases and labels.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from pipeline.errors import UsageError
from pipeline import sql_models
from pipeline.storage import connect

LEVELS = {"user_week": "user_week_scores", "session": "session_scores"}

# metrics(scored, labels, level, *, personas=None, fixed_k): long metrics table (detectors.evaluation.evaluate)
Metrics = Callable[..., pl.DataFrame]


class MissingLabelsError(UsageError):
    """The input folder has no labels/ (only generated worlds carry ground truth)."""


def evaluate_run(db_path: Path, input_dir: Path, *, metrics: Metrics, fixed_k: int = 50) -> dict[str, pl.DataFrame]:
    """Metrics per level (user_week, session): one row per metric, one column per method."""
    labels_dir = input_dir / "labels"
    if not (labels_dir / "user_weeks.parquet").exists():
        raise MissingLabelsError(f"no ground truth in {labels_dir} (goodhart generate writes it)")
    user_week_labels = pl.read_parquet(labels_dir / "user_weeks.parquet")
    session_labels = pl.read_parquet(labels_dir / "sessions.parquet")
    with connect(db_path, read_only=True) as con:
        scored = {level: con.sql(f"SELECT * FROM {table}").pl() for level, table in LEVELS.items()}
    tables = {
        "user_week": metrics(scored["user_week"], user_week_labels, "user_week", fixed_k=fixed_k),
        "session": metrics(scored["session"], session_labels, "session", personas=user_week_labels, fixed_k=fixed_k),
    }
    out = {level: _wide(table) for level, table in tables.items()}
    if (labels_dir / "links.parquet").exists():
        out["link"] = link_metrics(db_path, labels_dir / "links.parquet")
    return out


CURVE_INTENSITIES = (0.25, 0.5, 1.0)
CURVE_METRICS = ("pr_auc", "precision_at_k_true", "recall", "fpr_legit", "fpr_hard_cases")


def intensity_curve(
    out_dir: Path, *, users: int, weeks: int, seed: int, run: Callable[[Path, Path], object], metrics: Metrics,
    intensities: tuple[float, ...] = CURVE_INTENSITIES,
) -> pl.DataFrame:
    """Detection against how hard gamers game: one agentic world per intensity (same seed: the same
    people game in the same weeks, only more or less), each run (`run(world, db)`) and scored at
    user-week level. One row per metric (the headline ones, then recall per tactic), one column
    per intensity."""
    from data.generate import generate_world

    columns = {}
    for intensity in intensities:
        world = out_dir / f"intensity-{intensity:g}"
        generate_world(world, users=users, weeks=weeks, seed=seed, style="agentic", intensity=intensity)
        db = out_dir / f"intensity-{intensity:g}.duckdb"
        db.unlink(missing_ok=True)
        run(world, db)
        table = evaluate_run(db, world, metrics=metrics)["user_week"]
        columns[f"{intensity:g}"] = dict(zip(table.get_column("metric").to_list(),
                                             table.get_column("goodhart").to_list(), strict=True))
    wanted = [m for m in CURVE_METRICS if all(m in c for c in columns.values())]
    wanted += sorted({m for c in columns.values() for m in c if m.startswith("recall_tactic:")})
    return pl.DataFrame({"metric": wanted, **{k: [c.get(m) for m in wanted] for k, c in columns.items()}})


def link_metrics(db_path: Path, true_links: Path) -> pl.DataFrame:
    """How the run's links agree with a world's true links (labels/links.parquet): a session's
    `deployed` against "a true link reaches a deployed change" (precision, recall; NULL outcomes
    counted apart), and each link method's precision. Set-wise, in DuckDB."""
    with connect(db_path, read_only=True) as con:
        con.execute("CREATE TEMP TABLE true_links AS SELECT session_id, change_id FROM read_parquet($path)",
                    {"path": str(true_links)})
        return con.sql(sql_models.load("pipeline.publish").sql("link_metrics")).pl()


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
