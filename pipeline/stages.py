"""The pipeline's stages as plain functions over a database file: load, features, detect.

flows.py wraps each in a Prefect flow; `run_local` chains them without Prefect (tests, benchmarks).
Each stage opens its own connection and closes it, so stages can run in separate tasks.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from detectors.scoring import score_level
from features.build import build_features
from pipeline import runs
from pipeline.load import LoadSummary, load_inputs
from pipeline.settings import Settings
from pipeline.storage import connect, create_raw_tables, read_sql
from pipeline.workspace import building, run_lock


@dataclass(frozen=True)
class DetectSummary:
    user_weeks: int
    user_weeks_flagged: int
    sessions: int
    sessions_flagged: int
    wasted_cost_usd: float
    flags_by_severity: dict[str, int]


@dataclass(frozen=True)
class RunResult:
    run_id: str
    db_path: Path
    load: LoadSummary
    feature_rows: dict[str, int]
    detect: DetectSummary


def begin(db_path: Path, run_id: str, started_at: datetime, input_dir: Path, settings: Settings) -> None:
    """Create the schema if needed and open the run record."""
    with connect(db_path) as con:
        create_raw_tables(con)
        runs.start_run(con, run_id, started_at, input_dir, settings.config)


def load(db_path: Path, input_dir: Path, run_id: str, settings: Settings, now: datetime) -> LoadSummary:
    """Validate and load every new input file; bad rows go to rejected_rows."""
    with connect(db_path) as con:
        return load_inputs(
            con, input_dir, run_id,
            max_future_skew=settings.max_future_skew, now=now, default_prices=settings.default_prices,
        )


def features(db_path: Path, settings: Settings) -> dict[str, int]:
    """Rebuild sessions, links and the feature tables from the raw tables."""
    with connect(db_path) as con:
        return build_features(con, settings.feature_variables)


def detect(db_path: Path, run_id: str, settings: Settings) -> DetectSummary:
    """Score every user-week and session, write the score tables, flags and analysts' views."""
    with connect(db_path) as con:
        user_weeks = con.sql("SELECT * FROM user_week_peer_features ORDER BY user_id, week_start").pl()
        sessions = con.sql("SELECT * FROM session_features ORDER BY session_id").pl()
        scored_user_weeks = score_level(user_weeks, "user_week", settings.detectors)
        scored_sessions = score_level(sessions, "session", settings.detectors)
        publish_scores(con, run_id, scored_user_weeks, scored_sessions)
        return summarise(con)


def publish_scores(con, run_id: str, scored_user_weeks: pl.DataFrame, scored_sessions: pl.DataFrame) -> None:
    con.execute("SET VARIABLE run_id = ?", [run_id])
    con.register("scored_user_weeks", scored_user_weeks)
    con.register("scored_sessions", scored_sessions)
    for table in ("latest_verdicts", "user_week_scores", "session_scores", "flags"):
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {read_sql('pipeline', table)}")
    con.unregister("scored_user_weeks")
    con.unregister("scored_sessions")
    con.execute(read_sql("pipeline", "views"))


def summarise(con) -> DetectSummary:
    (uw, uw_flagged, wasted), = con.sql(
        "SELECT count(*), count(*) FILTER (WHERE flagged), coalesce(sum(wasted_cost_usd), 0) FROM user_week_scores"
    ).fetchall()
    (ss, ss_flagged), = con.sql("SELECT count(*), count(*) FILTER (WHERE flagged) FROM session_scores").fetchall()
    by_severity = dict(con.sql("SELECT severity, count(*) FROM flags GROUP BY severity ORDER BY severity").fetchall())
    return DetectSummary(uw, uw_flagged, ss, ss_flagged, float(wasted), by_severity)


def finish(db_path: Path, run_id: str, load_summary: LoadSummary) -> None:
    with connect(db_path) as con:
        runs.finish_run(con, run_id, load_summary.inputs_seen)
        con.execute("CHECKPOINT")


def run_local(
    input_dir: Path, db_path: Path, settings: Settings, *, wait: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> RunResult:
    """The whole detection run without Prefect: same stages, same atomic publish.

    `on_stage(name)` is called as each stage starts: begin, load, features, detect, finish, and
    publish (the build is complete and closed, just before the rename); tests use it to kill or
    pause a run at a chosen point.
    """
    stage = on_stage or (lambda name: None)
    started_at = runs.utc_now()
    run_id = runs.new_run_id(started_at)
    with run_lock(db_path, wait=wait), building(db_path) as work:
        stage("begin")
        begin(work, run_id, started_at, input_dir, settings)
        stage("load")
        load_summary = load(work, input_dir, run_id, settings, started_at)
        stage("features")
        feature_rows = features(work, settings)
        stage("detect")
        detect_summary = detect(work, run_id, settings)
        stage("finish")
        finish(work, run_id, load_summary)
        stage("publish")
    return RunResult(run_id, db_path, load_summary, feature_rows, detect_summary)
