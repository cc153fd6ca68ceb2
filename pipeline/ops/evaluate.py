"""`goodhart evaluate`: score a run against a generated world's ground truth, beside two baselines.

The metrics are the detectors' (detectors.evaluation.evaluate) and the run is the pipeline's:
flows.py hands both in (flows.evaluate_run, flows.intensity_curve); this side reads the
databases and labels.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
    """Metrics per level (user_week, session), and per link when the world has true links: one row
    per metric, one column per method."""
    labels = read_labels(input_dir)
    with connect(db_path, read_only=True) as con:
        scored = {level: con.sql(f"SELECT * FROM {table}").pl() for level, table in LEVELS.items()}
    tables = {
        "user_week": metrics(scored["user_week"], labels.user_weeks, "user_week", fixed_k=fixed_k),
        "session": metrics(scored["session"], labels.sessions, "session", personas=labels.user_weeks, fixed_k=fixed_k),
    }
    out = {level: _wide(table) for level, table in tables.items()}
    if labels.links is not None:
        out["link"] = link_metrics(db_path, labels.links)
    return out


@dataclass(frozen=True)
class Labels:
    user_weeks: pl.DataFrame
    sessions: pl.DataFrame
    links: pl.DataFrame | None  # session_id x change_id: the world's true links, when it has them


def read_labels(input_dir: Path) -> Labels:
    """A generated world's labels (`labels/`), in the ids the run sees: a world written as vendor
    exports (`goodhart generate --vendor`) names sessions and changes as the vendors do, and its
    `vendor_ids/` maps the world's ids to theirs (people keep their ids through people.csv)."""
    labels_dir = input_dir / "labels"
    if not (labels_dir / "user_weeks.parquet").exists():
        raise MissingLabelsError(f"no ground truth in {labels_dir} (goodhart generate writes it)")
    sessions = pl.read_parquet(labels_dir / "sessions.parquet")
    links = pl.read_parquet(labels_dir / "links.parquet", columns=["session_id", "change_id"]) \
        if (labels_dir / "links.parquet").exists() else None
    vendor_ids = input_dir / "vendor_ids"
    if vendor_ids.is_dir():
        session_ids = pl.read_parquet(vendor_ids / "sessions.parquet", columns=["session_id", "vendor_id"])
        sessions = _as_vendor_ids(sessions, session_ids, "session_id")
        if links is not None:
            change_ids = pl.read_parquet(vendor_ids / "changes.parquet", columns=["change_id", "vendor_id"])
            links = _as_vendor_ids(_as_vendor_ids(links, session_ids, "session_id"), change_ids, "change_id")
    return Labels(pl.read_parquet(labels_dir / "user_weeks.parquet"), sessions, links)


def _as_vendor_ids(frame: pl.DataFrame, ids: pl.DataFrame, column: str) -> pl.DataFrame:
    """`column` of `frame` replaced by its vendor id (every world id has one: the export writes them all)."""
    mapped = frame.join(ids, on=column, how="left", maintain_order="left")
    missing = mapped.get_column("vendor_id").null_count()
    if missing:
        raise UsageError(f"{column}: {missing} of the labels' ids are not in vendor_ids/: not this world's export")
    return mapped.with_columns(pl.col("vendor_id").alias(column)).drop("vendor_id")


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


def link_metrics(db_path: Path, true_links: pl.DataFrame) -> pl.DataFrame:
    """How the run's links agree with a world's true links (session_id x change_id): a session's
    `deployed` against "a true link reaches a deployed change" (precision, recall; NULL outcomes
    counted apart), and each link method's precision. Set-wise, in DuckDB."""
    with connect(db_path, read_only=True) as con:
        con.register("true_links", true_links.select("session_id", "change_id"))  # what link_metrics.sql reads
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
