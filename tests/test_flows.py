"""The Prefect flows end to end on the contract's example, under Prefect's test harness."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import duckdb
import polars as pl
import pytest

import flows
from tests.processes import children_running, wait_until_gone
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

CANARY = "canary-7f3a91-do-not-store"


def _example_with_canary(contract_example: Path, tmp_path: Path) -> Path:
    """The contract example plus a prompt holding the canary, loaded and rejected once each."""
    input_dir = tmp_path / "input"
    shutil.copytree(contract_example, input_dir)
    rows = [
        {"invocation_id": "i-c1", "ts": "2026-10-05T09:20:00Z", "user_id": "alice", "session_id": "s-100",
         "repo": "shop/checkout", "prompt_text": f"please keep this secret {CANARY}"},
        {"invocation_id": "i-c2", "ts": "not a time", "user_id": "alice", "session_id": "s-100",
         "prompt_text": f"rejected but still secret {CANARY}"},
    ]
    with open(input_dir / "invocations.jsonl", "a") as fh:
        fh.write("".join(json.dumps(row) + "\n" for row in rows))
        fh.write('{"invocation_id": "i-c3", "prompt_text": "' + CANARY + '", "ts": \n')  # malformed JSON
    return input_dir


@pytest.mark.slow
def test_detection_flow_publishes_tables_artifact_and_never_the_prompt(
    prefect_harness, contract_example: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    input_dir = _example_with_canary(contract_example, tmp_path)
    db = tmp_path / "out" / "goodhart.duckdb"

    result = flows.detection_flow(str(input_dir), str(db), report_dir=str(tmp_path / "out" / "report"))

    invocations = result.load.datasets["invocations"]
    assert (invocations.rows_given, invocations.rows_loaded, invocations.rows_rejected) == (6, 4, 2)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM user_week_scores").fetchall() == [(2,)]
        assert con.sql("SELECT count(*) FROM session_scores").fetchall() == [(2,)]
        assert con.sql("SELECT status, rows_given, rows_rejected FROM runs").fetchall() == [("completed", 21, 2)]
        deployed = dict(con.sql("SELECT session_id, deployed FROM session_scores").fetchall())
        assert deployed == {"s-100": True, "s-200": False}

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["goodhart-run-summary"]))
        )
    summary = next(a for a in artifacts if result.run_id in a.data)
    assert "| invocations | 1 | 0 | 6 | 4 | 2 | 0 |" in summary.data
    assert "wasted cost: $" in summary.data
    assert "finance report:" in summary.data and (tmp_path / "out" / "report" / "report.html").exists()

    # privacy: the canary is in no file the run wrote, nor in anything it printed or published
    written = [p for p in db.parent.rglob("*") if p.is_file()]
    assert db in written
    for path in written:
        assert CANARY.encode() not in path.read_bytes(), path
    captured = capfd.readouterr()
    assert CANARY not in captured.out + captured.err
    assert all(CANARY not in str(a.data) for a in artifacts)


def test_daily_deployment_has_cron_schedule_and_absolute_parameters(tmp_path: Path) -> None:
    deployment = flows.daily_deployment("input", str(tmp_path / "g.duckdb"), None)
    assert deployment.name == "goodhart-daily"
    assert [s.schedule.cron for s in deployment.schedules] == ["0 6 * * *"]
    assert deployment.parameters == {
        "input_dir": str(Path("input").resolve()),
        "db": str(tmp_path / "g.duckdb"),
        "config": None,
        "report_dir": None,
    }
    assert flows.daily_deployment("in", "db", None, cron="*/15 * * * *").schedules[0].schedule.cron == "*/15 * * * *"


@pytest.mark.slow
def test_scoring_on_an_existing_dask_cluster_equals_the_single_process_run(prefect_harness, tmp_path: Path) -> None:
    import prefect
    from distributed import Client, LocalCluster
    from prefect_dask import DaskTaskRunner

    from data.generate import generate_world
    from pipeline.settings import Settings
    from flows import run_local

    world = tmp_path / "world"
    generate_world(world, users=60, weeks=3, seed=11)
    single = run_local(world, tmp_path / "single.duckdb", Settings())

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        config = tmp_path / "dask.toml"
        config.write_text(f'[engine]\ndask_address = "{cluster.scheduler_address}"\n')
        fanned = flows.detection_flow(str(world), str(tmp_path / "dask.duckdb"), str(config))
        ran = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))

        @prefect.flow(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
        def tasks_at_once() -> int:
            return flows._tasks_at_once(Settings())

        assert tasks_at_once() == 2  # the cluster's worker threads bound the weeks in flight

    assert any("score_level" in prefix for prefix in ran), ran  # the weeks were scored on the cluster
    assert (fanned.detect.user_weeks, fanned.detect.sessions) == (single.detect.user_weeks, single.detect.sessions)
    _assert_same_scores(tmp_path / "single.duckdb", tmp_path / "dask.duckdb")

    # the default: a local cluster the flow starts and stops (here forced for a small world)
    local = tmp_path / "local.toml"
    local.write_text("[engine]\ndask_min_rows = 0\n")
    flows.detection_flow(str(world), str(tmp_path / "local.duckdb"), str(local))
    _assert_same_scores(tmp_path / "single.duckdb", tmp_path / "local.duckdb")


def _assert_same_scores(single_db: Path, other_db: Path) -> None:
    # models run in other processes: scores may differ in the last bits, decisions and texts not at all
    decided = "flagged, severity, detectors, reasons"
    with duckdb.connect(str(single_db), read_only=True) as a, duckdb.connect(str(other_db), read_only=True) as b:
        for table, key in (("user_week_scores", "user_id, week_start"), ("session_scores", "session_id")):
            exact = f"SELECT {key}, {decided} FROM {table} ORDER BY {key}"
            assert a.sql(exact).fetchall() == b.sql(exact).fetchall(), table
            numbers = f"SELECT score, wasted_cost_usd FROM {table} ORDER BY {key}"
            for left, right in zip(a.sql(numbers).fetchall(), b.sql(numbers).fetchall(), strict=True):
                assert left == pytest.approx(right, rel=1e-9, abs=1e-12), table
        flags = "SELECT flag_id, detectors, severity FROM flags ORDER BY flag_id"
        assert a.sql(flags).fetchall() == b.sql(flags).fetchall()


def test_scoring_runs_on_dask_when_it_pays_or_a_cluster_is_given() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from pipeline.settings import Settings

    settings = Settings()
    in_process = flows.scoring_task_runner(settings, 10)
    assert isinstance(in_process, ThreadPoolTaskRunner) and in_process._max_workers == settings.scoring_threads
    local = flows.scoring_task_runner(settings, settings.dask_min_rows)
    assert isinstance(local, DaskTaskRunner) and local.cluster_kwargs["n_workers"] == settings.dask_workers
    settings.config["engine"]["dask_address"] = "tcp://scheduler:8786"
    assert flows.scoring_task_runner(settings, 10).address == "tcp://scheduler:8786"
    settings.config["engine"] |= {"dask_address": "", "dask_workers": 0}
    assert isinstance(flows.scoring_task_runner(settings, 10**9), ThreadPoolTaskRunner)


@pytest.mark.slow
def test_goodhart_serve_fires_its_cron_and_the_scheduled_run_publishes(contract_example: Path, tmp_path: Path) -> None:
    """End to end, as a platform team runs it: `goodhart serve` with no PREFECT_API_URL starts its
    own Prefect server (scheduler included); the server schedules the cron's runs, the served
    deployment picks one up when due, and its results land in the database."""
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    db = tmp_path / "g.duckdb"
    serve = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "serve", "--input", str(contract_example), "--db", str(db),
         "--cron", "* * * * *"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(serve.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 300
        while not any("scheduled run" in line and "completed" in line for line in lines):
            assert serve.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "no scheduled run completed in 5 minutes:\n" + "".join(lines)
            time.sleep(1)
        ui = next(re.search(r"UI: (http://127\.0\.0\.1:\d+)", line) for line in lines if "UI: http" in line).group(1)
        request = urllib.request.Request(
            f"{ui}/api/flow_runs/filter", method="POST", headers={"Content-Type": "application/json"},
            data=json.dumps({"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}).encode(),
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            completed = json.load(response)
        served = [run for run in completed if run["deployment_id"]]  # not the subflows
        assert served and all(run["auto_scheduled"] for run in served), completed
        server_pids = children_running(serve.pid, "prefect")
        assert server_pids, "serve's own Prefect server is not its child"
    finally:
        serve.terminate()
        serve.wait(timeout=60)
    output = "".join(lines)
    assert "scheduled run" in output and "started" in output
    assert "published run" in output  # the served run's stages print on serve's output
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM runs WHERE status = 'completed'").fetchall()[0][0] >= 1
        assert con.sql("SELECT count(*) FROM user_week_scores").fetchall() == [(2,)]
    assert not wait_until_gone(server_pids, timeout=30), "the Prefect server outlived goodhart serve"


def test_scoring_weeks_on_threads_gives_the_same_scores_as_one_at_a_time(tmp_path: Path) -> None:
    import shutil

    from data.generate import generate_world
    from pipeline.settings import Settings

    world, db = tmp_path / "world", tmp_path / "g.duckdb"
    generate_world(world, users=40, weeks=3, seed=3)
    flows.run_local(world, db, Settings())
    scored = {}
    for threads in (1, 2):  # the plain detect step, rescoring the same feature rows
        config = tmp_path / f"threads-{threads}.toml"
        config.write_text(f"[engine]\nscoring_threads = {threads}\n")
        copy = shutil.copy(db, tmp_path / f"threads-{threads}.duckdb")
        flows.PlainSteps().detect(copy, "rescore", flows.with_detector_defaults(Settings.from_file(config)), None)
        with duckdb.connect(str(copy), read_only=True) as con:
            scored[threads] = [con.sql(f"SELECT * FROM {table} ORDER BY ALL").pl()
                               for table in ("scored_user_weeks", "scored_sessions")]
    assert scored[1][0].height > 0 and scored[1][1].height > 0
    assert all(one.equals(two) for one, two in zip(scored[1], scored[2], strict=True))


def test_in_order_finishes_in_order_and_starts_at_most_in_flight_ahead() -> None:
    started: list[int] = []
    unfinished_at_most = 0

    def start_all():
        for item in range(7):
            started.append(item)
            yield item

    def finish(item: int) -> int:
        nonlocal unfinished_at_most
        unfinished_at_most = max(unfinished_at_most, len(started) - item)
        return item * 10

    assert list(flows.in_order(start_all(), finish, in_flight=3)) == [0, 10, 20, 30, 40, 50, 60]
    assert unfinished_at_most == 3


def test_run_ups_read_the_stored_weeks_of_people_with_an_anchor_only() -> None:
    from tests.detectors.test_run_up import RULE, _config, _features, _scored
    from tests.detectors.test_week_sessions import _scored as _scored_sessions

    features = _features({"u1": [1e6, 2e6, 4e6], "u2": [1e6, 2e6, 4e6]})
    scored = _scored(features, {("u1", 2): ["rule:sustained"]})
    run_up_week = sorted(scored.get_column("week_start").unique().to_list())[1]
    sessions = pl.DataFrame({
        "session_id": ["s-burn", "s-shipped", "s-other"], "user_id": ["u1", "u1", "u2"],
        "week_start": [run_up_week] * 3, "tokens": [2_000_000, 1_000_000, 2_000_000],
        "cost_usd": [4.0, 2.0, 4.0], "unmerged": [True, False, True],
    })
    rule = {**RULE, "sessions": {"conditions": ["unmerged == true"], "reason": "fed nothing: {tokens:tok} tokens"}}
    with duckdb.connect() as con:
        for name, frame in {"user_week_peer_features": features, "scored_user_weeks": scored,
                            "session_features": sessions, "scored_sessions": _scored_sessions(sessions, {})}.items():
            con.register("__frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM __frame")
            con.unregister("__frame")
        weeks, named = flows.run_ups(con, _config(rule))
        assert weeks.columns == scored.columns
        assert sorted(weeks.get_column("week_start").to_list()) == sorted(
            scored.filter(pl.col("user_id") == "u1").get_column("week_start").to_list()[:2])
        assert weeks.get_column("detectors").to_list() == [["run_up:sustained"]] * 2
        # the run-up week's session its rule names, as a flagged week's would be; not the others
        assert named.get_column("session_id").to_list() == ["s-burn"]
        assert named.get_column("detectors").to_list() == [["week_rule:sustained"]]
        # no rule with a run-up: no rows, the stored tables' columns
        plain_weeks, plain_sessions = flows.run_ups(con, _config({k: v for k, v in RULE.items() if k != "run_up"}))
        assert plain_weeks.height == 0 and plain_weeks.columns == scored.columns
        assert plain_sessions.height == 0 and "session_id" in plain_sessions.columns
