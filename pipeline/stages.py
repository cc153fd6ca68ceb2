"""The pipeline's stages as plain functions over a database file: load, features, detect.

flows.py wraps each in a Prefect flow; `run_local` chains them without Prefect (tests, benchmarks).
Each stage opens its own connection and closes it, so stages can run in separate tasks.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from pathlib import Path

import polars as pl

from detectors.scoring import score_level
from features.build import FeatureBuild, build_features
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
    features: FeatureBuild
    detect: DetectSummary

    @property
    def feature_rows(self) -> dict[str, int]:
        return self.features.rows


def begin(db_path: Path, run_id: str, started_at: datetime, input_dir: Path, settings: Settings) -> None:
    """Create the schema if needed and open the run record."""
    with _connect(db_path, settings) as con:
        create_raw_tables(con)
        runs.start_run(con, run_id, started_at, input_dir, settings.config)


def load(db_path: Path, input_dir: Path, run_id: str, settings: Settings, now: datetime) -> LoadSummary:
    """Validate and load every new input file; bad rows go to rejected_rows."""
    with _connect(db_path, settings) as con:
        return load_inputs(
            con, input_dir, run_id,
            max_future_skew=settings.max_future_skew, now=now, default_prices=settings.default_prices,
        )


def features(db_path: Path, settings: Settings, *, incremental: bool = False) -> FeatureBuild:
    """Rebuild sessions, links and the feature tables from the raw tables: all of them, or (when
    `incremental`) only the weeks the newly loaded rows can change."""
    with _connect(db_path, settings) as con:
        return build_features(con, settings.feature_variables, incremental=incremental)


@dataclass(frozen=True)
class DetectPartition:
    """One week's feature rows: the unit of scoring (models are fit per week, so partitions are
    independent and can be scored anywhere: in process, or on a Dask worker)."""

    week_start: date
    user_weeks: pl.DataFrame
    sessions: pl.DataFrame


@dataclass(frozen=True)
class ScoredPartition:
    week_start: date
    user_weeks: pl.DataFrame
    sessions: pl.DataFrame


def detect(db_path: Path, run_id: str, settings: Settings, weeks: Sequence[date] | None = None) -> DetectSummary:
    """Score the weeks' user-weeks and sessions (every week when `weeks` is None), one week at a
    time, then publish the score tables, flags and analysts' views."""
    scored = [score_partition(partition, settings.detectors) for partition in iter_partitions(db_path, settings, weeks)]
    if not scored:  # no usage at all, or no week to rescore: the tables still get their columns
        scored = [score_partition(empty_partition(db_path, settings), settings.detectors)]
    return publish(db_path, run_id, settings, scored, weeks)


def partition_weeks(db_path: Path, settings: Settings, weeks: Sequence[date] | None = None) -> list[date]:
    """The weeks to score: `weeks` that have usage, or every week with usage."""
    with _connect(db_path, settings, read_only=True) as con:
        found = [row[0] for row in con.sql(
            "SELECT DISTINCT week_start FROM user_week_peer_features "
            "UNION SELECT DISTINCT week_start FROM session_features ORDER BY 1"
        ).fetchall()]
    return found if weeks is None else [week for week in found if week in set(weeks)]


def read_partition(db_path: Path, settings: Settings, week: date) -> DetectPartition:
    """One week's user-week and session feature rows, in key order (so fits are reproducible)."""
    with _connect(db_path, settings, read_only=True) as con:
        user_weeks = con.sql(
            "SELECT * FROM user_week_peer_features WHERE week_start = $week ORDER BY user_id", params={"week": week}
        ).pl()
        sessions = con.sql(
            "SELECT * FROM session_features WHERE week_start = $week ORDER BY session_id", params={"week": week}
        ).pl()
    return DetectPartition(week, user_weeks, sessions)


def empty_partition(db_path: Path, settings: Settings) -> DetectPartition:
    """No rows, the feature tables' columns: scoring it gives the score tables' shape."""
    with _connect(db_path, settings, read_only=True) as con:
        return DetectPartition(
            None,  # type: ignore[arg-type]
            con.sql("SELECT * FROM user_week_peer_features LIMIT 0").pl(),
            con.sql("SELECT * FROM session_features LIMIT 0").pl(),
        )


def iter_partitions(db_path: Path, settings: Settings, weeks: Sequence[date] | None = None) -> Iterator[DetectPartition]:
    for week in partition_weeks(db_path, settings, weeks):
        yield read_partition(db_path, settings, week)


def score_partition(partition: DetectPartition, detectors_config: Mapping[str, Any]) -> ScoredPartition:
    """Rules and models over one week: pure (no database), so it runs on any worker."""
    return ScoredPartition(
        partition.week_start,
        score_level(partition.user_weeks, "user_week", detectors_config),
        score_level(partition.sessions, "session", detectors_config),
    )


def publish(
    db_path: Path, run_id: str, settings: Settings, scored: Sequence[ScoredPartition], weeks: Sequence[date] | None
) -> DetectSummary:
    """Store the scored weeks (replacing those weeks, or everything when `weeks` is None), then
    rebuild the score tables, flags and views from every stored week."""
    with _connect(db_path, settings) as con:
        publish_scores(con, run_id, scored, weeks)
        return summarise(con)


def publish_scores(con, run_id: str, scored: Sequence[ScoredPartition], weeks: Sequence[date] | None) -> None:
    con.execute("SET VARIABLE run_id = ?", [run_id])
    for table, level in (("scored_user_weeks", "user_weeks"), ("scored_sessions", "sessions")):
        frames = [getattr(part, level) for part in scored]
        con.register("__scored", pl.concat(frames, how="vertical"))
        exists = con.sql(f"SELECT 1 FROM duckdb_tables() WHERE table_name = '{table}' AND NOT temporary").fetchall()
        if weeks is None or not exists:
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM __scored")
        else:
            con.execute(f"DELETE FROM {table} WHERE week_start IN (SELECT unnest($weeks::DATE[]))", {"weeks": list(weeks)})
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM __scored")
        con.unregister("__scored")
    for table in ("latest_verdicts", "user_week_scores", "session_scores", "flags"):
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {read_sql('pipeline', table)}")
    con.execute(read_sql("pipeline", "views"))


def _connect(db_path: Path, settings: Settings, *, read_only: bool = False):
    return connect(db_path, read_only=read_only, memory_limit=settings.duckdb_memory_limit)


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
    input_dir: Path, db_path: Path, settings: Settings, *, wait: bool = False, full: bool = False,
    on_stage: Callable[[str], None] | None = None,
) -> RunResult:
    """The whole detection run without Prefect: same stages, same atomic publish. Incremental
    (only the weeks new rows change) when the settings say so, unless `full`.

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
        feature_build = features(work, settings, incremental=settings.incremental and not full)
        stage("detect")
        detect_summary = detect(work, run_id, settings, feature_build.weeks)
        stage("finish")
        finish(work, run_id, load_summary)
        stage("publish")
    return RunResult(run_id, db_path, load_summary, feature_build, detect_summary)
