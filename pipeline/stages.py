"""The pipeline's stages as plain functions over a database file: load, features, detect.

flows.py wraps each in a Prefect flow; `run_local` chains them without Prefect (tests, benchmarks).
Each stage opens its own connection and closes it, so stages can run in separate tasks.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from pathlib import Path

import duckdb
import polars as pl

from detectors.scoring import score_level
from features.build import FeatureBuild, build_features
from pipeline import progress
from pipeline.ingest import fingerprint_key
from pipeline.ops import permissions, runs
from pipeline.publish import root_cause
from pipeline.ingest.load import LoadSummary, empty_required_datasets, load_inputs
from pipeline.errors import UsageError
from pipeline.settings import Settings
from pipeline.storage import connect, convert_to_storage_version, create_raw_tables, read_sql
from pipeline.ops.workspace import building, run_lock

S = TypeVar("S")
T = TypeVar("T")


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
    """Create the schema if needed, check the database's fingerprint key against the installation's
    (a database fingerprinted before keys is migrated: pipeline.ingest.fingerprint_key) and open the run
    record (on the run's private copy; a database in a newer storage format than STORAGE_VERSION
    is rewritten in it first)."""
    if db_path.exists():
        convert_to_storage_version(db_path)
    key = fingerprint_key.installation_key(settings)
    with open_db(db_path, settings) as con:
        create_raw_tables(con)
        migrated = fingerprint_key.check_database(
            con, key, run_id=run_id, now=started_at, source=fingerprint_key.key_source(settings))
        runs.start_run(con, run_id, started_at, input_dir, settings.config)
    if migrated:
        progress.current().line(migrated)


def load(db_path: Path, input_dir: Path, run_id: str, settings: Settings, now: datetime) -> LoadSummary:
    """Validate and load every new input file; bad rows go to rejected_rows."""
    with open_db(db_path, settings) as con:
        return load_inputs(
            con, input_dir, run_id,
            max_future_skew=settings.max_future_skew, now=now, default_prices=settings.default_prices,
            source_options=settings.source_options, key=fingerprint_key.installation_key(settings),
        )


def features(db_path: Path, settings: Settings, *, incremental: bool = False) -> FeatureBuild:
    """Rebuild sessions, links and the feature tables from the raw tables: all of them, or (when
    `incremental`) only the weeks the newly loaded rows can change."""
    with open_db(db_path, settings) as con:
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
    """Score the weeks' user-weeks and sessions (every week when `weeks` is None) and publish the
    score tables, flags and analysts' views. One week at a time: each is read, scored and stored
    before the next is read, so memory holds one week's rows."""
    with open_db(db_path, settings) as con:
        to_score = partition_weeks(con, weeks)
        progress.current().set_total(len(to_score))
        scored = scored_weeks(con, to_score, settings.detectors, settings.scoring_threads)
        return publish_scores(con, run_id, settings.detectors, scored, weeks)


def scored_weeks(
    con: duckdb.DuckDBPyConnection, weeks: Sequence[date], detectors_config: Mapping[str, Any], threads: int
) -> Iterator[ScoredPartition]:
    """The weeks scored on `threads` threads, in week order; each week's two levels are scored
    apart, so even one week (a daily run) uses two threads. Weeks are read one at a time on the
    caller's thread (the connection is not shared) and at most `threads` are held unstored."""
    if threads <= 1:
        yield from (score_partition(read_partition(con, week), detectors_config) for week in weeks)
        return
    with ThreadPoolExecutor(threads) as pool:
        def start(week: date) -> tuple[date, Future[pl.DataFrame], Future[pl.DataFrame]]:
            partition = read_partition(con, week)
            return (
                week,
                pool.submit(score_level, partition.user_weeks, "user_week", detectors_config),
                pool.submit(score_level, partition.sessions, "session", detectors_config),
            )

        def finish(started: tuple[date, Future[pl.DataFrame], Future[pl.DataFrame]]) -> ScoredPartition:
            week, user_weeks, sessions = started
            return ScoredPartition(week, user_weeks.result(), sessions.result())

        yield from in_order((start(week) for week in weeks), finish, in_flight=threads)


def in_order(started: Iterable[S], finish: Callable[[S], T], *, in_flight: int) -> Iterator[T]:
    """Finish each started piece of work in order, starting the next ones lazily so that at most
    `in_flight` are started and not yet finished (bounded memory for a stream of futures)."""
    pending: deque[S] = deque()
    for item in started:
        pending.append(item)
        if len(pending) >= in_flight:
            yield finish(pending.popleft())
    while pending:
        yield finish(pending.popleft())


def open_db(db_path: Path, settings: Settings, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection with the run's settings (UTC, DuckDB memory limit)."""
    return connect(db_path, read_only=read_only, memory_limit=settings.duckdb_memory_limit)


def partition_weeks(con: duckdb.DuckDBPyConnection, weeks: Sequence[date] | None = None) -> list[date]:
    """The weeks to score: those of `weeks` with usage, or every week with usage."""
    found = [row[0] for row in con.sql(
        "SELECT DISTINCT week_start FROM user_week_peer_features "
        "UNION SELECT DISTINCT week_start FROM session_features ORDER BY 1"
    ).fetchall()]
    return found if weeks is None else [week for week in found if week in set(weeks)]


def rows_to_score(con: duckdb.DuckDBPyConnection, weeks: Sequence[date] | None = None) -> int:
    """User-weeks plus sessions in `weeks` (every week when None)."""
    where = "" if weeks is None else "WHERE week_start IN (SELECT unnest($weeks::DATE[]))"
    params = {} if weeks is None else {"weeks": list(weeks)}
    return sum(
        con.sql(f"SELECT count(*) FROM {table} {where}", params=params).fetchall()[0][0]
        for table in ("user_week_peer_features", "session_features")
    )


def read_partition(con: duckdb.DuckDBPyConnection, week: date | None) -> DetectPartition:
    """One week's user-week and session feature rows in key order (so fits are reproducible);
    `week` None: no rows, the columns only."""
    where = "WHERE week_start = $week" if week is not None else "WHERE false"
    params = {"week": week} if week is not None else {}
    return DetectPartition(
        week,  # type: ignore[arg-type]
        con.sql(f"SELECT * FROM user_week_peer_features {where} ORDER BY user_id", params=params).pl(),
        con.sql(f"SELECT * FROM session_features {where} ORDER BY session_id", params=params).pl(),
    )


def score_partition(partition: DetectPartition, detectors_config: Mapping[str, Any]) -> ScoredPartition:
    """Rules and models over one week: pure (no database), so it runs on any worker."""
    return ScoredPartition(
        partition.week_start,
        score_level(partition.user_weeks, "user_week", detectors_config),
        score_level(partition.sessions, "session", detectors_config),
    )


def publish_scores(
    con: duckdb.DuckDBPyConnection, run_id: str, detectors_config: Mapping[str, Any],
    scored: Iterable[ScoredPartition], weeks: Sequence[date] | None,
) -> DetectSummary:
    """Store the scored weeks (replacing those weeks, or everything when `weeks` is None) as they
    come, then rebuild the score tables, flags and views from every stored week."""
    con.execute("SET VARIABLE run_id = ?", [run_id])
    levels = (("scored_user_weeks", "user_weeks"), ("scored_sessions", "sessions"))
    fresh = weeks is None or any(not _has_table(con, table) for table, _ in levels)
    if not fresh:
        for table, _ in levels:
            con.execute(f"DELETE FROM {table} WHERE week_start IN (SELECT unnest($weeks::DATE[]))", {"weeks": list(weeks)})
    stored = 0
    for part in scored:
        _store(con, part, levels, create=fresh and stored == 0)
        stored += 1
        progress.current().advance()
    if fresh and stored == 0:  # no usage at all: the tables still get their columns
        _store(con, score_partition(read_partition(con, None), detectors_config), levels, create=True)
    for table in ("latest_verdicts", "user_week_scores", "session_scores", "flags", "shipped_work"):
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {read_sql('pipeline.publish', table)}")
    con.execute(read_sql("pipeline.publish", "views"))
    root_cause.publish(con)
    return summarise(con)


def _store(con: duckdb.DuckDBPyConnection, part: ScoredPartition, levels: tuple[tuple[str, str], ...], *, create: bool) -> None:
    for table, level in levels:
        con.register("__scored", getattr(part, level))
        verb = f"CREATE OR REPLACE TABLE {table} AS" if create else f"INSERT INTO {table} BY NAME"
        con.execute(f"{verb} SELECT * FROM __scored")
        con.unregister("__scored")


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(con.sql("SELECT 1 FROM duckdb_tables() WHERE table_name = $t AND NOT temporary", params={"t": table}).fetchall())


def summarise(con) -> DetectSummary:
    (uw, uw_flagged, wasted), = con.sql(
        "SELECT count(*), count(*) FILTER (WHERE flagged), coalesce(sum(wasted_cost_usd), 0) FROM user_week_scores"
    ).fetchall()
    (ss, ss_flagged), = con.sql("SELECT count(*), count(*) FILTER (WHERE flagged) FROM session_scores").fetchall()
    by_severity = dict(con.sql("SELECT severity, count(*) FROM flags GROUP BY severity ORDER BY severity").fetchall())
    return DetectSummary(uw, uw_flagged, ss, ss_flagged, float(wasted), by_severity)


def finish(db_path: Path, run_id: str, load_summary: LoadSummary, error: str | None = None) -> None:
    with connect(db_path) as con:
        runs.finish_run(con, run_id, load_summary.inputs_seen, error)
        con.execute("CHECKPOINT")


class EmptyDatasetError(UsageError):
    """A required dataset holds no rows after the load: nothing can be detected from nothing."""


def empty_required(db_path: Path, settings: Settings) -> str | None:
    """Why the run must stop after its load (a required dataset holds no rows), or None."""
    with open_db(db_path, settings, read_only=True) as con:
        return empty_required_datasets(con)


def empty_dataset_error(why: str, db_path: Path) -> EmptyDatasetError:
    return EmptyDatasetError(
        f"{why}; nothing was scored. The load is published: see rejected_rows in {db_path} (or pass --allow-empty)"
    )


# --- what each stage says when it ends (both chains: run_local here, detection_flow in flows.py) ---

def database_line(db_path: Path, work: Path) -> str:
    size = work.stat().st_size if work.exists() else 0
    return f"database: a private copy of {db_path} ({size / 2**20:,.0f} MiB)" if db_path.exists() else f"database: new file {db_path}"


def load_line(load: LoadSummary) -> str:
    datasets = load.datasets.values()
    given, rejected = sum(d.rows_given for d in datasets), sum(d.rows_rejected for d in datasets)
    files, skipped = sum(d.files_loaded for d in datasets), sum(d.files_skipped for d in datasets)
    rows = ", ".join(f"{d.dataset} {d.rows_loaded:,}" for d in datasets if d.rows_given)
    return (f"loaded {given - rejected:,} of {given:,} rows ({rejected:,} rejected) from {files:,} new files, "
            f"{skipped:,} already loaded" + (f": {rows}" if rows else ""))


def features_line(build: FeatureBuild) -> str:
    sessions, user_weeks = build.rows.get("sessions", 0), build.rows.get("user_week_features", 0)
    if build.weeks is None:
        return f"features: full rebuild ({build.reason}): {sessions:,} sessions, {user_weeks:,} user-weeks"
    weeks = ", ".join(str(week) for week in build.weeks) or "none"
    return f"features: weeks rebuilt: {weeks} ({build.reason})"


def detect_line(detect: DetectSummary) -> str:
    return (f"scored {detect.user_weeks:,} user-weeks ({detect.user_weeks_flagged:,} flagged) and "
            f"{detect.sessions:,} sessions ({detect.sessions_flagged:,} flagged); wasted ${detect.wasted_cost_usd:,.2f}")


def run_local(
    input_dir: Path, db_path: Path, settings: Settings, *, wait: bool = False, full: bool = False,
    allow_empty: bool = False, on_stage: Callable[[str], None] | None = None,
) -> RunResult:
    """The whole detection run without Prefect: same stages, same atomic publish. Incremental
    (only the weeks new rows change) when the settings say so, unless `full`. When a required
    dataset holds no rows after the load, the load alone is published (the run recorded as
    failed) and EmptyDatasetError raised, unless `allow_empty`.

    `on_stage(name)` is called as each stage starts: begin, load, features, detect, finish, and
    publish (the build is complete and closed, just before the rename); tests use it to kill or
    pause a run at a chosen point.
    """
    stage = on_stage or (lambda name: None)
    report = progress.current()
    started_at = runs.utc_now()
    run_id = runs.new_run_id(started_at)
    report.stage("opening the database")
    modes = permissions.for_group(settings.group_readable)
    with run_lock(db_path, wait=wait, modes=modes), building(db_path, modes=modes) as work:
        stage("begin")
        begin(work, run_id, started_at, input_dir, settings)
        report.done(database_line(db_path, work))
        stage("load")
        report.stage("loading input files")
        load_summary = load(work, input_dir, run_id, settings, started_at)
        report.done(load_line(load_summary))
        empty = None if allow_empty else empty_required(work, settings)
        if empty is None:
            stage("features")
            report.stage("building sessions, links and features")
            feature_build = features(work, settings, incremental=settings.incremental and not full)
            report.done(features_line(feature_build))
            stage("detect")
            report.stage("scoring weeks")
            detect_summary = detect(work, run_id, settings, feature_build.weeks)
            report.done(detect_line(detect_summary))
        stage("finish")
        finish(work, run_id, load_summary, empty)
        stage("publish")
        report.stage("publishing")
    if empty is not None:
        report.done(f"published the load only (run {run_id}, failed)")
        raise empty_dataset_error(empty, db_path)
    report.done(f"published run {run_id} to {db_path}")
    return RunResult(run_id, db_path, load_summary, feature_build, detect_summary)
