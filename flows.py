"""The pipeline's one chain of steps (load, features, detect, publish, report, alerts) and the jobs
that run it, as Prefect flows or plain.

`chain` is the only place that orders the steps. It is handed a step runner: `PrefectSteps` runs
each step as a coarse task of the one detection flow (retries where input I/O can fail, a run
summary artifact), and the scoring as a subflow, because a flow run is what carries a task runner
(threads, or a Dask cluster for large runs); `PlainSteps` calls the same plain functions in this
process (`goodhart run --no-prefect`, `run_local`, tests, benchmarks). Settings enter once, at the
job's edge, where the detectors' default config is merged in (`with_detector_defaults`).

Scoring fans out the same way in both: each partition of a few weeks (`DetectPartition`: their
feature rows, models fit on each week alone) is submitted to an executor, at most a bounded number
in flight, and stored in week order as it comes back. Plain: a thread pool. Prefect: the detect
flow's task runner, a DaskTaskRunner on a local Dask cluster, or an existing one given `[engine]
dask_address`. DuckDB work (load, features, publish) stays in the job's process, on the database file.

This is also the only module that imports both features/ and detectors/: the pipeline package
knows neither, and is handed what it needs (purge's rebuild, evaluate's metrics) from here.
"""
from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from functools import cache
from types import SimpleNamespace

import duckdb
import polars as pl

from detectors.config import default_config as detector_defaults
from detectors.config import known_settings as known_detector_settings
from detectors.config import merge_config as merge_detector_config
from detectors.scoring import check_columns as check_detector_columns
from detectors.scoring import check_config as check_detector_config
from detectors.scoring import detectors_fingerprint, load_model_libraries, score_level
from detectors.run_up import as_week_rules, flag_run_ups, run_up_inputs
from detectors.week_sessions import flag_week_sessions
from features.build import TEMPLATE_CONTEXT, FeatureBuild, build_features
from pipeline import progress, sql_models
from pipeline.ingest import fingerprint_key
from pipeline.ingest.load import LoadSummary, empty_required_datasets, load_inputs
from pipeline.ops import evaluate as evaluation
from pipeline.ops import permissions, runs
from pipeline.ops import purge as retention
from pipeline.ops.workspace import building, run_lock
from pipeline.publish import root_cause, scores  # not alerts: it imports Prefect (its notification blocks)
from pipeline.publish.report import ReportSummary, write_report
from pipeline.publish.scores import DetectPartition, DetectSummary, ScoredPartition
from pipeline.settings import ConfigError, Settings, check_known
from pipeline.storage import connect, convert_to_storage_version, create_raw_tables

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.task_runners import TaskRunner

DEFAULT_CRON = "0 6 * * *"  # daily, 06:00 UTC
DERIVED_TABLES = (*sql_models.declared("features"), *scores.SCORE_TABLES)  # what derives from raw usage (a purge rebuilds them)

S = TypeVar("S")
T = TypeVar("T")


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


def with_detector_defaults(settings: Settings) -> Settings:
    """The settings with the detectors' packaged defaults merged under their [detectors] table
    (rules merge by name: one threshold can change without restating the rule), checked before
    anything starts (ConfigError: a key the defaults lack, an unparsable rule, an unknown pyod member).
    Idempotent."""
    defaults = detector_defaults()
    check_known(settings.detectors, known_detector_settings(defaults), "detectors")
    try:
        detectors = merge_detector_config(defaults, settings.detectors)
        check_detector_config(detectors)
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"[detectors] {error}"[:300]) from None
    return settings.with_detectors(detectors)


# --- the steps as plain functions over a database file (each opens its own connection) ---------

def open_db(db_path: Path, settings: Settings, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection with the run's settings (UTC, DuckDB memory limit)."""
    return connect(db_path, read_only=read_only, memory_limit=settings.duckdb_memory_limit)


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


def load_step(db_path: Path, input_dir: Path, run_id: str, settings: Settings, now: datetime) -> LoadSummary:
    """Validate and load every new input file; bad rows go to rejected_rows."""
    with open_db(db_path, settings) as con:
        return load_inputs(
            con, input_dir, run_id,
            max_future_skew=settings.max_future_skew, now=now, default_prices=settings.default_prices,
            source_options=settings.source_options, key=fingerprint_key.installation_key(settings),
        )


def empty_required(db_path: Path, settings: Settings) -> str | None:
    """Why the run must stop after its load (a required dataset holds no rows), or None."""
    with open_db(db_path, settings, read_only=True) as con:
        return empty_required_datasets(con)


def features_step(db_path: Path, settings: Settings, incremental: bool = False) -> FeatureBuild:
    """Rebuild sessions, links and the feature tables from the raw tables: all of them, or (when
    `incremental`) only the weeks the newly loaded rows can change."""
    with open_db(db_path, settings) as con:
        models = sql_models.load("features", TEMPLATE_CONTEXT)
        return build_features(con, settings.feature_variables, incremental=incremental, models=models)


def score_partition(partition: DetectPartition, detectors_config: dict[str, Any]) -> ScoredPartition:
    """Rules and models over a partition's weeks: pure (no database), so it runs on any worker."""
    user_weeks = score_weeks(partition.user_weeks, "user_week", detectors_config)
    sessions = score_weeks(partition.sessions, "session", detectors_config)
    return ScoredPartition(partition.weeks, user_weeks,
                           flag_week_sessions(partition.sessions, sessions, user_weeks, detectors_config))


def score_weeks(rows: pl.DataFrame, level: str, detectors_config: dict[str, Any]) -> pl.DataFrame:
    """One level of a partition's weeks scored, the models fit on each week alone."""
    return score_level(rows, level, detectors_config, fit_by="week_start")


class Scored(Protocol):
    def result(self) -> pl.DataFrame: ...


def check_feature_columns(db_path: Path, settings: Settings) -> None:
    """ConfigError when the detector settings read a feature column the feature tables lack (a
    user's error: reported before any week is scored, not as a crash in the middle)."""
    try:
        check_detector_columns(settings.detectors, _feature_columns(db_path, settings))
    except ValueError as error:
        raise ConfigError(f"[detectors] {error}"[:300]) from None


# Connections live in helpers' frames, not in those an error passes through: Prefect keeps a failed
# flow's exception, its traceback keeps the frames, and DuckDB reports what they hold as leaked
# objects (a screenful after the one-line error) when the process exits.
def _feature_columns(db_path: Path, settings: Settings) -> dict[str, list[str]]:
    with open_db(db_path, settings, read_only=True) as con:
        empty = scores.read_partition(con, [])
    return {"user_week": empty.user_weeks.columns, "session": empty.sessions.columns}


def _rows_to_score(db_path: Path, settings: Settings, weeks: list[date] | None) -> int:
    with open_db(db_path, settings, read_only=True) as con:
        weeks, _ = scores.weeks_to_score(con, weeks, scores.scoring_fingerprint(detectors_fingerprint(settings.detectors)))
        return scores.rows_to_score(con, weeks)


def detect_step(
    db_path: Path, run_id: str, settings: Settings, weeks: Sequence[date] | None,
    submit: Callable[[pl.DataFrame, str], Scored], *, in_flight: int,
) -> DetectSummary:
    """Score the weeks (every week when `weeks` is None, or when the stored scores came from other
    detector settings or code) and publish the score tables, flags and views. Each partition is read
    on this thread (the connection is not shared) and its two levels handed to `submit(rows, level)`
    apart (a thread pool's, or a Prefect task runner's), so even one week (a daily run) keeps two
    workers busy. Weeks go together, in order, up to `scoring_partition_rows` rows (the rules and
    texts cost per call more than per row); at most `in_flight` partitions are submitted and not
    yet stored, so memory holds a few weeks, not all."""
    def start(weeks: tuple[date, ...]) -> tuple[DetectPartition, Scored, Scored]:
        partition = scores.read_partition(con, weeks)
        return partition, submit(partition.user_weeks, "user_week"), submit(partition.sessions, "session")

    def finish(started: tuple[DetectPartition, Scored, Scored]) -> ScoredPartition:
        partition, user_weeks, sessions = started
        scored_weeks = user_weeks.result()
        return ScoredPartition(partition.weeks, scored_weeks, flag_week_sessions(
            partition.sessions, sessions.result(), scored_weeks, settings.detectors))

    check_feature_columns(db_path, settings)
    fingerprint = scores.scoring_fingerprint(detectors_fingerprint(settings.detectors))
    with open_db(db_path, settings) as con:
        weeks, every_week_because = scores.weeks_to_score(con, weeks, fingerprint)
        to_score = scores.partition_weeks(con, weeks, max_rows=settings.scoring_partition_rows)
        progress.current().set_total(sum(map(len, to_score)))
        scored = in_order((start(part) for part in to_score), finish, in_flight=in_flight)
        summary = scores.publish_scores(
            con, run_id, scored, weeks, fingerprint=fingerprint,
            empty=lambda: score_partition(scores.read_partition(con, []), settings.detectors),
            run_ups=lambda con: run_ups(con, settings.detectors))
    return replace(summary, every_week_because=every_week_because)


def run_ups(con: duckdb.DuckDBPyConnection, config: dict[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The run-ups to the flagged weeks of every stored week (detectors/run_up.py), read for the
    people with a week their rules flagged only: the user-weeks that join one, and the sessions of
    those weeks their rule names (detectors/week_sessions.py, against each week's sessions)."""
    columns, anchored = run_up_inputs(config)
    weeks = con.sql("SELECT * FROM scored_user_weeks WHERE false").pl()
    sessions = con.sql("SELECT * FROM scored_sessions WHERE false").pl()
    if not anchored:
        return weeks, sessions
    people = ("user_id IN (SELECT user_id FROM scored_user_weeks WHERE flagged "
              "AND list_has_any(detectors, $anchored::VARCHAR[]))")
    features = con.sql(f"SELECT {', '.join(columns)} FROM user_week_peer_features WHERE {people}",
                       params={"anchored": anchored}).pl()
    scored = con.sql(f"SELECT * FROM scored_user_weeks WHERE {people}", params={"anchored": anchored}).pl()
    weeks = flag_run_ups(features, scored, config)
    named = [sessions]
    if weeks.height == 0:
        return weeks, sessions
    # only the sessions of the people with a run-up in each week; the week's median session size
    # (what a session is measured against) from all of the week's sessions
    con.register("__run_up_weeks", weeks.select("user_id", "week_start"))
    try:
        own = "SEMI JOIN __run_up_weeks USING (user_id, week_start) ORDER BY week_start, session_id"
        parts = con.sql(f"SELECT * FROM session_features {own}").pl()
        stored = con.sql(f"SELECT * FROM scored_sessions {own}").pl()
        typical = dict(con.sql("SELECT week_start, median(tokens) FROM session_features "
                               "WHERE week_start IN (SELECT week_start FROM __run_up_weeks) GROUP BY week_start").fetchall())
    finally:
        con.unregister("__run_up_weeks")
    for week in sorted(typical):
        this_week = pl.col("week_start") == week
        week_stored = stored.filter(this_week)
        flagged = flag_week_sessions(
            parts.filter(this_week), week_stored, as_week_rules(weeks.filter(this_week)), config,
            typical_tokens=None if typical[week] is None else float(typical[week]))
        named.append(flagged.filter(pl.col("detectors").list.len() != week_stored.get_column("detectors").list.len()))
    return weeks, pl.concat(named)


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


# --- the step runners --------------------------------------------------------------------------

class Steps(Protocol):
    """One method per step the chain runs (begin and the publish are the chain's own)."""

    def load(self, work: Path, input_dir: Path, run_id: str, settings: Settings, now: datetime) -> LoadSummary: ...
    def features(self, work: Path, settings: Settings, incremental: bool) -> FeatureBuild: ...
    def detect(self, work: Path, run_id: str, settings: Settings, weeks: list[date] | None) -> DetectSummary: ...
    def report(self, result: RunResult, report_dir: Path | None) -> None: ...
    def alerts(self, db: Path, settings: Settings, now: datetime, run_id: str) -> None: ...


class PlainSteps:
    """The steps as plain calls in this process; weeks scored on `scoring_threads` threads."""

    def load(self, work: Path, input_dir: Path, run_id: str, settings: Settings, now: datetime) -> LoadSummary:
        return load_step(work, input_dir, run_id, settings, now)

    def features(self, work: Path, settings: Settings, incremental: bool) -> FeatureBuild:
        return features_step(work, settings, incremental)

    def detect(self, work: Path, run_id: str, settings: Settings, weeks: list[date] | None) -> DetectSummary:
        threads = settings.scoring_threads
        with ThreadPoolExecutor(threads) as pool:
            return detect_step(work, run_id, settings, weeks,
                               lambda rows, level: pool.submit(score_weeks, rows, level, settings.detectors),
                               in_flight=threads)

    def report(self, result: RunResult, report_dir: Path | None) -> None:
        if report_dir is not None:
            write_report(result.db_path, report_dir)

    def alerts(self, db: Path, settings: Settings, now: datetime, run_id: str) -> None:
        from pipeline.publish import alerts

        alerts.send_alerts(db, settings.alert_subscriptions, now=now, run_id=run_id)


class PrefectSteps:
    """The steps as tasks of the running flow; the scoring as its subflow on a task runner of its own.
    (A subflow costs about 0.3 s of API round trips more than a task: each step its own flow was
    about 1 s more per run.)"""

    def __init__(self) -> None:
        self.jobs = prefect_jobs()

    def load(self, work: Path, input_dir: Path, run_id: str, settings: Settings, now: datetime) -> LoadSummary:
        return self.jobs.load_inputs_task(work, input_dir, run_id, settings, now)

    def features(self, work: Path, settings: Settings, incremental: bool) -> FeatureBuild:
        return self.jobs.build_features_task(work, settings, incremental)

    def detect(self, work: Path, run_id: str, settings: Settings, weeks: list[date] | None) -> DetectSummary:
        runner = scoring_task_runner(settings, _rows_to_score(work, settings, weeks))
        return self.jobs.detect_flow.with_options(task_runner=runner)(work, run_id, settings, weeks)

    def report(self, result: RunResult, report_dir: Path | None) -> None:
        self.jobs.run_summary_task(result, report_dir)

    def alerts(self, db: Path, settings: Settings, now: datetime, run_id: str) -> None:
        self.jobs.send_alerts_task(db, settings, now, run_id)


# --- the chain ---------------------------------------------------------------------------------

def chain(
    steps: Steps, input_dir: Path, db_path: Path, settings: Settings, *, report_dir: Path | None = None,
    wait: bool = False, full: bool = False, allow_empty: bool = False, send_alerts: bool = True,
    on_stage: Callable[[str], None] | None = None,
) -> RunResult:
    """The whole detection run: lock, private copy, begin, load, features, detect, publish
    atomically (pipeline.ops.workspace), then the report and alerts. Incremental (only the weeks
    new rows change) when the settings say so, unless `full`. When a required dataset holds no
    rows after the load, the load alone is published (the run recorded as failed) and
    EmptyDatasetError raised, unless `allow_empty`.

    `on_stage(name)` is called as each stage starts: begin, load, features, detect, finish, and
    publish (the build is complete and closed, just before the rename); tests use it to kill or
    pause a run at a chosen point, benchmarks to time the stages.
    """
    settings = with_detector_defaults(settings)
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
        load_summary = steps.load(work, input_dir, run_id, settings, started_at)
        report.done(load_line(load_summary))
        empty = None if allow_empty else empty_required(work, settings)
        if empty is None:
            # the models' libraries import on a thread while the features build (DuckDB releases the
            # GIL), instead of in front of the first fit; not during the load, whose Python work
            # (file checks, hashing) they would hold the GIL against: a daily run's load of 445 rows
            # took 1.6 s beside them, 0.8 s alone (the whole daily run 6% less wall time)
            threading.Thread(target=_load_model_libraries, args=(settings.detectors,),
                             name="goodhart-model-imports", daemon=True).start()
            feature_build, detect_summary = derive(
                steps, work, run_id, settings, incremental=settings.incremental and not full, on_stage=stage)
        stage("finish")
        runs.close_run(work, run_id, load_summary.inputs_seen, empty)
        stage("publish")
        report.stage("publishing")
    if empty is not None:
        report.done(f"published the load only (run {run_id}, failed)")
        raise runs.empty_dataset_error(empty, db_path)
    report.done(f"published run {run_id} to {db_path}")
    result = RunResult(run_id, db_path, load_summary, feature_build, detect_summary)
    if report_dir is not None:
        report.stage("writing the finance report")
    steps.report(result, report_dir)
    if send_alerts and settings.alert_subscriptions:
        steps.alerts(db_path, settings, started_at, run_id)
    if report_dir is not None:
        report.done(f"finance report: {report_dir / 'report.html'}")
    return result


def derive(
    steps: Steps, work: Path, run_id: str, settings: Settings, *, incremental: bool,
    on_stage: Callable[[str], None] = lambda name: None,
) -> tuple[FeatureBuild, DetectSummary]:
    """Features, then detection of the weeks they rebuilt (every week unless `incremental`), on
    the database file `work`: the part of the chain a purge reruns."""
    report = progress.current()
    on_stage("features")
    report.stage("building sessions, links and features")
    feature_build = steps.features(work, settings, incremental)
    report.done(features_line(feature_build))
    on_stage("detect")
    report.stage("scoring weeks")
    weeks = None if feature_build.weeks is None else list(feature_build.weeks)
    detect_summary = steps.detect(work, run_id, settings, weeks)
    report.done(scores.detect_line(detect_summary))
    return feature_build, detect_summary


def _load_model_libraries(detectors_config: dict[str, Any]) -> None:
    try:
        load_model_libraries(detectors_config)
    except Exception:  # noqa: BLE001 - a bad model setting is raised again, and reported, where the models fit
        pass


def preload_model_libraries(settings: Settings) -> None:
    """Import the models' libraries now (seconds), where the caller would otherwise wait (for a
    temporary Prefect server to answer); a run then finds them imported. A bad setting is reported
    by the run, not here."""
    try:
        detectors = with_detector_defaults(settings).detectors
    except ConfigError:
        return
    _load_model_libraries(detectors)


def run_local(
    input_dir: Path, db_path: Path, settings: Settings, *, wait: bool = False, full: bool = False,
    allow_empty: bool = False, on_stage: Callable[[str], None] | None = None, report_dir: Path | None = None,
) -> RunResult:
    """The whole detection run without Prefect (`goodhart run --no-prefect`, tests, benchmarks):
    the chain on PlainSteps. It sends no alerts: they go out from Prefect runs (`goodhart run`, serve)."""
    return chain(PlainSteps(), Path(input_dir), Path(db_path), settings, report_dir=report_dir, wait=wait, full=full,
                 allow_empty=allow_empty, send_alerts=False, on_stage=on_stage)


# --- what each stage says when it ends -----------------------------------------------------------

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


# --- Prefect: tasks and flows, one per step ------------------------------------------------------
#
# Built on first use (`prefect_jobs`), not at import: `goodhart run --no-prefect`, purge, evaluate
# and the tests of the plain chain never import Prefect (about 1 s). The module's attributes
# (`flows.detection_flow`, `flows.load_inputs_task`, ...) still name them, through `__getattr__`.

PREFECT_JOBS = (
    "load_inputs_task", "build_features_task", "score_level_task", "run_summary_task", "send_alerts_task",
    "detect_flow", "detection_flow",
)


def __getattr__(name: str) -> Any:
    if name in PREFECT_JOBS:
        return getattr(prefect_jobs(), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def prefect_jobs() -> SimpleNamespace:
    """The Prefect tasks and flows, defined once per process (the first call imports Prefect).
    Each keeps its module-level name as qualified name, so a deployment's entrypoint is
    `flows.py:detection_flow`, which a served run's process loads through `__getattr__`."""
    from prefect import flow, task
    from prefect.artifacts import create_markdown_artifact
    from prefect.cache_policies import NO_CACHE

    from pipeline.publish import alerts

    @task(retries=2, retry_delay_seconds=10)  # input files may sit on flaky network storage
    def load_inputs_task(work: Path, input_dir: Path, run_id: str, settings: Settings, now: datetime) -> LoadSummary:
        return load_step(work, input_dir, run_id, settings, now)

    @task
    def build_features_task(work: Path, settings: Settings, incremental: bool) -> FeatureBuild:
        return features_step(work, settings, incremental)

    @task(cache_policy=NO_CACHE)  # inputs are data frames: nothing to gain from hashing them
    def score_level_task(rows: pl.DataFrame, level: str, detectors_config: dict[str, Any]) -> pl.DataFrame:
        return score_weeks(rows, level, detectors_config)

    @task(cache_policy=NO_CACHE)  # a run result is no input worth hashing, and a rerun must write again
    def run_summary_task(result: RunResult, report_dir: Path | None = None) -> str:
        """Publish the run's summary as a Prefect markdown artifact; write the finance report when asked."""
        markdown = run_summary_markdown(result) + root_cause.markdown(result.db_path)
        if report_dir is not None:
            report: ReportSummary = write_report(result.db_path, report_dir)
            markdown += f"- finance report: `{report.out_dir / 'report.html'}`\n"
        create_markdown_artifact(key="goodhart-run-summary", markdown=markdown, description=f"Goodhart run {result.run_id}")
        return markdown

    @task(cache_policy=NO_CACHE)  # what is due depends on the database and the clock, not on the arguments
    def send_alerts_task(db: Path, settings: Settings, now: datetime, run_id: str | None = None) -> Any:  # an AlertSummary
        """After a run has published: send each `[[alerts]]` subscription what it has due (docs/alerts.md)."""
        return alerts.send_alerts(db, settings.alert_subscriptions, now=now, run_id=run_id)

    @flow(name="goodhart-detect")
    def detect_flow(work: Path, run_id: str, settings: Settings, weeks: list[date] | None = None) -> DetectSummary:
        """Score each week (all, or `weeks`) as its own task on the flow's task runner, and store
        each as it comes back, in week order; then publish the score tables, flags and views."""
        return detect_step(work, run_id, settings, weeks,
                           lambda rows, level: score_level_task.submit(rows, level, settings.detectors),
                           in_flight=_tasks_at_once(settings))

    @flow(name="goodhart-detection", on_running=[_announce_start],
          on_completion=[_announce_end], on_failure=[_announce_end], on_crashed=[_announce_end])
    def detection_flow(
        input_dir: str, db: str, config: str | None = None, report_dir: str | None = None, full: bool = False,
        allow_empty: bool = False, wait: bool = False,
    ) -> RunResult:
        """The scheduled job: the chain on PrefectSteps (load, link and features, detect, publish
        atomically, report, alerts). Only the weeks new rows change are rebuilt (`[run] incremental`),
        unless `full`. A required dataset with no rows publishes the load alone and fails the run,
        unless `allow_empty`. `wait`: wait for a run holding the database instead of failing."""
        plain = progress.plain_unless_installed()  # a served run prints its stages on serve's output
        with progress.reporting(plain) if plain else nullcontext():
            return chain(PrefectSteps(), Path(input_dir), Path(db), Settings.from_file(Path(config) if config else None),
                         report_dir=Path(report_dir) if report_dir else None, wait=wait, full=full,
                         allow_empty=allow_empty)

    jobs = dict(locals())
    for name in PREFECT_JOBS:
        jobs[name].fn.__qualname__ = jobs[name].__qualname__ = name  # as if module-level (deployment entrypoints)
    return SimpleNamespace(**{name: jobs[name] for name in PREFECT_JOBS})


def _tasks_at_once(settings: Settings) -> int:
    """How many scoring tasks the running flow's task runner runs at once: the Dask cluster's
    threads (an existing cluster may be large), else `scoring_threads`."""
    from prefect.context import FlowRunContext

    runner = FlowRunContext.get().task_runner
    if type(runner).__name__ == "DaskTaskRunner":  # by name: no Dask import when it is not used
        return max(sum(runner.client.nthreads().values()), 1)
    return settings.scoring_threads


def scoring_task_runner(settings: Settings, rows_to_score: int) -> TaskRunner:
    """Where the detect flow's scoring tasks run: an existing Dask cluster (`dask_address`); a local
    one of `dask_workers` processes when there are at least `dask_min_rows` rows to score (below
    that, starting worker processes costs more than it saves); else `scoring_threads` threads in
    the flow's own process."""
    if settings.dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=settings.dask_address)
    if settings.dask_workers == 0 or rows_to_score < settings.dask_min_rows:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=settings.scoring_threads)
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": settings.dask_workers, "threads_per_worker": 1, "processes": True,
            "dashboard_address": None, "silence_logs": 40,
        },
    )


def _announce_start(flow: Any, flow_run: Any, state: Any) -> None:
    if flow_run.deployment_id is not None:  # a scheduled or deployment run: say so on serve's output
        progress.PlainReporter(sys.stdout).line(f"scheduled run {flow_run.name!r} started")


def _announce_end(flow: Any, flow_run: Any, state: Any) -> None:
    if flow_run.deployment_id is not None:
        message = " ".join((state.message or "").split())
        progress.PlainReporter(sys.stdout).line(
            f"scheduled run {flow_run.name!r} {state.name.lower()}" + (f": {message}" if message else ""))


def run_summary_markdown(result: RunResult) -> str:
    lines = [
        f"# Goodhart run `{result.run_id}`",
        "",
        "| dataset | files loaded | files skipped | rows given | loaded | rejected | unpriced |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for d in result.load.datasets.values():
        lines.append(
            f"| {d.dataset} | {d.files_loaded} | {d.files_skipped} | {d.rows_given:,} | {d.rows_loaded:,} "
            f"| {d.rows_rejected:,} | {d.rows_unpriced:,} |"
        )
    detect = result.detect
    severities = ", ".join(f"{k}: {v}" for k, v in detect.flags_by_severity.items()) or "none"
    lines += [
        "",
        f"- user-weeks scored: {detect.user_weeks:,}, flagged: {detect.user_weeks_flagged:,}",
        f"- sessions scored: {detect.sessions:,}, flagged: {detect.sessions_flagged:,}{scores.through_week(detect)}",
        f"- flags by severity: {severities}",
        f"- wasted cost: ${detect.wasted_cost_usd:,.2f}",
    ]
    return "\n".join(lines) + "\n"


def daily_deployment(
    input_dir: str, db: str, config: str | None = None, cron: str = DEFAULT_CRON, report_dir: str | None = None
) -> RunnerDeployment:
    """The scheduled detection job: the parent flow with absolute paths as parameters."""
    parameters = {
        "input_dir": str(Path(input_dir).resolve()),
        "db": str(Path(db).resolve()),
        "config": str(Path(config).resolve()) if config else None,
        "report_dir": str(Path(report_dir).resolve()) if report_dir else None,
    }
    return prefect_jobs().detection_flow.to_deployment(name="goodhart-daily", cron=cron, parameters=parameters)


def serve(
    input_dir: str, db: str, config: str | None = None, cron: str = DEFAULT_CRON, report_dir: str | None = None
) -> None:
    """Serve the daily deployment (blocks until stopped); runs against PREFECT_API_URL when set."""
    import prefect

    prefect.serve(daily_deployment(input_dir, db, config, cron, report_dir))


# --- the other jobs that need features or detectors: purge, evaluate -----------------------------

def rederive(work: Path, run_id: str, settings: Settings) -> tuple[FeatureBuild, DetectSummary]:
    """Rebuild every week's features and scores of the database file `work` (a purge's rebuild),
    with the chain's own steps, plain."""
    return derive(PlainSteps(), work, run_id, with_detector_defaults(settings), incremental=False)


def purge(
    db_path: Path, before: date, *, now: datetime, settings: Settings | None = None, wait: bool = False
) -> retention.PurgeSummary:
    """Delete raw usage before `before` and rebuild what derives from it, atomically
    (pipeline.ops.purge; `goodhart purge`)."""
    return retention.purge(db_path, before, now=now, rederive=rederive, derived_tables=DERIVED_TABLES,
                           settings=settings, wait=wait)


def evaluate_run(db_path: Path, input_dir: Path, *, fixed_k: int = 50) -> dict[str, pl.DataFrame]:
    """A run's scores against a generated world's labels, beside two baselines (`goodhart evaluate`)."""
    from detectors.evaluation import evaluate

    return evaluation.evaluate_run(db_path, input_dir, metrics=evaluate, fixed_k=fixed_k)


def intensity_curve(
    out_dir: Path, *, users: int, weeks: int, seed: int, settings: Settings,
    intensities: tuple[float, ...] = evaluation.CURVE_INTENSITIES,
) -> pl.DataFrame:
    """Detection over gaming intensity on generated agentic worlds, each run plain (`goodhart curve`)."""
    from detectors.evaluation import evaluate

    return evaluation.intensity_curve(out_dir, users=users, weeks=weeks, seed=seed, metrics=evaluate,
                                      run=lambda world, db: run_local(world, db, settings), intensities=intensities)
