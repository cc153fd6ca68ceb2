"""Prefect flows: one per job (load, features, detect, report) and a parent that chains them.

The logic lives in plain functions (pipeline.stages); these wrappers add orchestration only:
coarse tasks at stage boundaries, retries where input I/O can fail, a run summary artifact, and
a served deployment with a daily schedule (`python flows.py serve`).

Scoring fans out: the detect flow submits one task per week (`stages.DetectPartition`: that
week's feature rows, models fit on them alone) to its task runner, a Prefect DaskTaskRunner on a
local Dask cluster, or on an existing cluster given `[engine] dask_address`. DuckDB work (load,
features, publish) stays in the flow's process, on the database file.
"""
from __future__ import annotations

import sys
from contextlib import nullcontext
from datetime import date, datetime
from pathlib import Path
from typing import Any

import prefect
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.deployments.runner import RunnerDeployment
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import FlowRun, State

from features.build import FeatureBuild
from pipeline import progress, stages
from pipeline.ops import permissions, runs
from pipeline.publish import alerts, root_cause
from pipeline.ingest.load import LoadSummary
from pipeline.publish.report import ReportSummary, write_report
from pipeline.settings import Settings
from pipeline.ops.workspace import building, run_lock

DEFAULT_CRON = "0 6 * * *"  # daily, 06:00 UTC


@task(retries=2, retry_delay_seconds=10)  # input files may sit on flaky network storage
def load_inputs_task(work: Path, input_dir: Path, run_id: str, settings: Settings, now: datetime) -> LoadSummary:
    return stages.load(work, input_dir, run_id, settings, now)


@task
def build_features_task(work: Path, settings: Settings, incremental: bool) -> FeatureBuild:
    return stages.features(work, settings, incremental=incremental)


@task(cache_policy=NO_CACHE)  # inputs are data frames: nothing to gain from hashing them
def score_partition_task(partition: stages.DetectPartition, detectors_config: dict[str, Any]) -> stages.ScoredPartition:
    return stages.score_partition(partition, detectors_config)


@flow(name="goodhart-load")
def load_flow(work: Path, input_dir: Path, run_id: str, settings: Settings, now: datetime) -> LoadSummary:
    """Validate and load new input files into the raw tables."""
    return load_inputs_task(work, input_dir, run_id, settings, now)


@flow(name="goodhart-features")
def features_flow(work: Path, settings: Settings, incremental: bool = False) -> FeatureBuild:
    """Sessions, links and features, rebuilt from the raw tables (only the touched weeks when incremental)."""
    return build_features_task(work, settings, incremental)


@flow(name="goodhart-detect")
def detect_flow(work: Path, run_id: str, settings: Settings, weeks: list[date] | None = None) -> stages.DetectSummary:
    """Score each week (all, or `weeks`) as its own task on the flow's task runner, and store
    each as it comes back, in week order; then publish the score tables, flags and views. At most
    `in_flight` weeks are submitted and not yet stored, so memory holds a few weeks, not all."""
    in_flight = 2 * _tasks_at_once(settings)
    with stages.open_db(work, settings) as con:
        to_score = stages.partition_weeks(con, weeks)
        progress.current().set_total(len(to_score))
        submitted = (
            score_partition_task.submit(stages.read_partition(con, week), settings.detectors)
            for week in to_score
        )
        scored = stages.in_order(submitted, lambda future: future.result(), in_flight=in_flight)
        return stages.publish_scores(con, run_id, settings.detectors, scored, weeks)


def _tasks_at_once(settings: Settings) -> int:
    """How many scoring tasks the running flow's task runner runs at once: the Dask cluster's
    threads (an existing cluster may be large), else `scoring_threads`."""
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
        return ThreadPoolTaskRunner(max_workers=settings.scoring_threads)
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": settings.dask_workers, "threads_per_worker": 1, "processes": True,
            "dashboard_address": None, "silence_logs": 40,
        },
    )


@task
def finance_report_task(db: Path, report_dir: Path) -> ReportSummary:
    return write_report(db, report_dir)


@flow(name="goodhart-report")
def report_flow(result: stages.RunResult, report_dir: Path | None = None) -> str:
    """Publish the run's summary as a Prefect markdown artifact; write the finance report when asked."""
    markdown = run_summary_markdown(result) + root_cause.markdown(result.db_path)
    if report_dir is not None:
        report = finance_report_task(result.db_path, report_dir)
        markdown += f"- finance report: `{report.out_dir / 'report.html'}`\n"
    create_markdown_artifact(key="goodhart-run-summary", markdown=markdown, description=f"Goodhart run {result.run_id}")
    return markdown


@task
def send_alerts_task(db: Path, settings: Settings, now: datetime, run_id: str | None) -> alerts.AlertSummary:
    return alerts.send_alerts(db, settings.alert_subscriptions, now=now, run_id=run_id)


@flow(name="goodhart-alerts")
def alerts_flow(db: Path, settings: Settings, now: datetime, run_id: str | None = None) -> alerts.AlertSummary:
    """After a run has published: send each `[[alerts]]` subscription what it has due (docs/alerts.md)."""
    return send_alerts_task(db, settings, now, run_id)


def _announce_start(flow: Any, flow_run: FlowRun, state: State) -> None:
    if flow_run.deployment_id is not None:  # a scheduled or deployment run: say so on serve's output
        progress.PlainReporter(sys.stdout).line(f"scheduled run {flow_run.name!r} started")


def _announce_end(flow: Any, flow_run: FlowRun, state: State) -> None:
    if flow_run.deployment_id is not None:
        message = " ".join((state.message or "").split())
        progress.PlainReporter(sys.stdout).line(
            f"scheduled run {flow_run.name!r} {state.name.lower()}" + (f": {message}" if message else ""))


@flow(name="goodhart-detection", on_running=[_announce_start],
      on_completion=[_announce_end], on_failure=[_announce_end], on_crashed=[_announce_end])
def detection_flow(
    input_dir: str, db: str, config: str | None = None, report_dir: str | None = None, full: bool = False,
    allow_empty: bool = False,
) -> stages.RunResult:
    """The scheduled job: load, link and features, detect, publish atomically, report. Only the
    weeks new rows change are rebuilt (`[run] incremental`), unless `full`. A required dataset
    with no rows publishes the load alone and fails the run, unless `allow_empty`."""
    plain = progress.plain_unless_installed()  # a served run prints its stages on serve's output
    with progress.reporting(plain) if plain else nullcontext():
        return _detection(Path(input_dir), Path(db), Settings.from_file(Path(config) if config else None),
                          Path(report_dir) if report_dir else None, full=full, allow_empty=allow_empty)


def _detection(
    input_path: Path, db_path: Path, settings: Settings, report_dir: Path | None, *, full: bool, allow_empty: bool
) -> stages.RunResult:
    report = progress.current()
    started_at = runs.utc_now()
    run_id = runs.new_run_id(started_at)
    report.stage("opening the database")
    modes = permissions.for_group(settings.group_readable)
    with run_lock(db_path, modes=modes), building(db_path, modes=modes) as work:
        stages.begin(work, run_id, started_at, input_path, settings)
        report.done(stages.database_line(db_path, work))
        report.stage("loading input files")
        load_summary = load_flow(work, input_path, run_id, settings, started_at)
        report.done(stages.load_line(load_summary))
        empty = None if allow_empty else stages.empty_required(work, settings)
        if empty is None:
            report.stage("building sessions, links and features")
            feature_build = features_flow(work, settings, settings.incremental and not full)
            report.done(stages.features_line(feature_build))
            report.stage("scoring weeks")
            weeks = None if feature_build.weeks is None else list(feature_build.weeks)
            with stages.open_db(work, settings, read_only=True) as con:
                rows_to_score = stages.rows_to_score(con, weeks)
            runner = scoring_task_runner(settings, rows_to_score)
            detect_summary = detect_flow.with_options(task_runner=runner)(work, run_id, settings, weeks)
            report.done(stages.detect_line(detect_summary))
        stages.finish(work, run_id, load_summary, empty)
        report.stage("publishing")
    if empty is not None:
        report.done(f"published the load only (run {run_id}, failed)")
        raise stages.empty_dataset_error(empty, db_path)
    report.done(f"published run {run_id} to {db_path}")
    result = stages.RunResult(run_id, db_path, load_summary, feature_build, detect_summary)
    if report_dir is not None:
        report.stage("writing the finance report")
    report_flow(result, report_dir)
    if settings.alert_subscriptions:
        alerts_flow(db_path, settings, started_at, run_id)
    if report_dir is not None:
        report.done(f"finance report: {report_dir / 'report.html'}")
    return result


def run_summary_markdown(result: stages.RunResult) -> str:
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
        f"- sessions scored: {detect.sessions:,}, flagged: {detect.sessions_flagged:,}",
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
    return detection_flow.to_deployment(name="goodhart-daily", cron=cron, parameters=parameters)


def serve(
    input_dir: str, db: str, config: str | None = None, cron: str = DEFAULT_CRON, report_dir: str | None = None
) -> None:
    """Serve the daily deployment (blocks until stopped); runs against PREFECT_API_URL when set."""
    prefect.serve(daily_deployment(input_dir, db, config, cron, report_dir))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "serve":
        sys.exit("usage: python flows.py serve --input DIR --db FILE [--config FILE] [--cron EXPR]")
    from pipeline.cli import main

    main(sys.argv[1:])
