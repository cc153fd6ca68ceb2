"""Runs on the same database never overlap, and analysts' read-only connections keep working.

Run A is a real run held still at a chosen stage (run_local's `on_stage` blocks on an event)
while it holds the run lock, so what the other runs do is deterministic: B, started without
--wait, exits 3 with one line; C, started with --wait at the same moment, queues behind A and
then runs on what A published. An analyst's read-only connection opened before any of them
answers throughout and afterwards.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from flows import run_local
from pipeline.ops.workspace import building_path, orphaned_wal_path
from tests.reliability.conftest import completed_runs, copy_world, counts, start_goodhart

pytestmark = pytest.mark.slow


def _lock_waiters(lock_file: Path) -> set[int]:
    """PIDs blocked in flock() on `lock_file` (Linux /proc/locks; empty elsewhere)."""
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return set()
    inode = f":{os.stat(lock_file).st_ino} "
    return {int(line.split()[5]) for line in text.splitlines() if "->" in line and "FLOCK" in line and inode in line + " "}


def _wait_for(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_second_run_exits_3_a_waiting_run_queues_and_an_analyst_reads_throughout(
    small_world: Path, fast_config: Path, fast_settings, tmp_path: Path
) -> None:
    first = copy_world(small_world, tmp_path / "v1")
    for dataset in ("token_usage", "invocations"):
        for late in sorted((first / dataset).iterdir())[4:]:
            late.unlink()
    full = copy_world(small_world, tmp_path / "v2")
    db = tmp_path / "out" / "g.duckdb"
    run_local(first, db, fast_settings)
    published = counts(db)

    analyst = duckdb.connect(str(db), read_only=True)  # opened before the runs, kept open to the end
    query = "SELECT count(*), sum(tokens) FROM user_week_scores"
    seen = analyst.sql(query).fetchall()

    def analyst_still_reads() -> None:
        assert analyst.sql(query).fetchall() == seen  # its snapshot: complete, never half a run
        assert analyst.sql("SELECT count(*) FROM runs").fetchall() == [(1,)]

    paused, resume = threading.Event(), threading.Event()

    def hold_at_features(stage: str) -> None:
        if stage == "features":
            paused.set()
            assert resume.wait(120), "the test never resumed run A"

    outcome: dict = {}

    def run_a() -> None:
        try:
            outcome["result"] = run_local(full, db, fast_settings, on_stage=hold_at_features)
        except BaseException as error:  # reported by the main thread
            outcome["error"] = error
            paused.set()

    a = threading.Thread(target=run_a)
    a.start()
    try:
        assert paused.wait(120) and "error" not in outcome, outcome.get("error")
        analyst_still_reads()

        args = ("run", "--input", str(full), "--db", str(db), "--no-prefect", "--config", str(fast_config))
        b = start_goodhart(*args, cwd=tmp_path)
        c = start_goodhart(*args, "--wait", cwd=tmp_path)
        b_out, b_err = b.communicate(timeout=120)
        assert b.returncode == 3, (b_out, b_err)
        assert b_err.startswith("goodhart: another run is writing") and b_err.strip().count("\n") == 0, b_err
        assert b_out == ""
        # C is queued on the lock, not running and not failed
        waiting = _wait_for(lambda: c.pid in _lock_waiters(db.with_name(db.name + ".lock")))
        assert waiting or not Path("/proc/locks").exists(), "the --wait run is not waiting on the lock"
        assert c.poll() is None
        analyst_still_reads()
    finally:
        resume.set()
        a.join(120)
    assert "error" not in outcome, outcome.get("error")
    c_out, c_err = c.communicate(timeout=300)
    assert c.returncode == 0, c_err

    analyst_still_reads()  # afterwards too: the file it opened is still there for it
    analyst.close()
    runs = completed_runs(db)
    assert len(runs) == 3 and {status for _, status in runs} == {"completed"}
    a_id = outcome["result"].run_id
    with duckdb.connect(str(db), read_only=True) as con:
        # C ran after A's publish, on A's result: every file already known, nothing loaded twice
        (c_loaded, c_skipped), = con.sql(
            "SELECT files_loaded, files_skipped FROM runs ORDER BY ended_at DESC LIMIT 1").fetchall()
        assert c_loaded == 0 and c_skipped > 0
        assert con.sql("SELECT run_id FROM runs ORDER BY ended_at").fetchall()[1] == (a_id,)
    after = counts(db)
    assert after["token_usage"] > published["token_usage"]
    assert after["rejected_rows"] == published["rejected_rows"]  # no row was loaded twice, none is a duplicate
    assert not building_path(db).exists()


def test_readers_in_other_processes_see_one_complete_run_or_the_next(
    small_world: Path, fast_settings, tmp_path: Path
) -> None:
    """A reader process polling while a run publishes sees run counts 1 then 2, each database whole."""
    world = copy_world(small_world, tmp_path / "world")
    extra = sorted((world / "token_usage").iterdir())[-1]
    held = extra.rename(tmp_path / extra.name)  # the first run without the last day, the second with it
    db = tmp_path / "g.duckdb"
    run_local(world, db, fast_settings)
    held.rename(extra)

    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert reader.stdout.readline().strip() == "ready"
        time.sleep(0.2)
        run_local(world, db, fast_settings)
        # until the reader has seen the second run (a fixed wait may be too short on a slow machine)
        deadline = time.monotonic() + 60
        while not (lines and lines[-1].startswith("2 ")) and time.monotonic() < deadline and reader.poll() is None:
            lines.append(reader.stdout.readline())
    finally:
        reader.terminate()
    out, err = reader.communicate(timeout=60)
    seen = [tuple(map(int, line.split())) for line in [*lines, *out.splitlines()] if line.strip()]
    assert seen and not err.strip(), err
    runs_seen = [r for r, _ in seen]
    assert set(runs_seen) <= {1, 2} and runs_seen == sorted(runs_seen) and runs_seen[-1] == 2
    for runs in (1, 2):  # each database, whole every time it was seen
        assert len({scores for r, scores in seen if r == runs}) <= 1


# a reader that reconnects in a loop, as an analyst's notebook would; prints (runs, scored rows)
READER = """
import sys, time, duckdb
db = sys.argv[1]
print("ready", flush=True)
while True:
    with duckdb.connect(db, read_only=True) as con:
        runs = con.sql("SELECT count(*) FROM runs WHERE status = 'completed'").fetchall()[0][0]
        scores = con.sql("SELECT count(*) FROM user_week_scores").fetchall()[0][0]
    print(runs, scores, flush=True)
    time.sleep(0.05)
"""


def test_a_killed_foreign_writer_does_not_make_the_next_publish_unopenable(
    contract_example: Path, fast_settings, tmp_path: Path
) -> None:
    """Someone opens the published file read-write (not a goodhart command) and is killed, leaving
    its write-ahead log: the next publish keeps that log aside, so the new file opens."""
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, fast_settings)
    killed = subprocess.run([sys.executable, "-c", FOREIGN_WRITER, str(db)], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    assert db.with_name(db.name + ".wal").exists()

    run_local(contract_example, db, fast_settings)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM runs WHERE status = 'completed'").fetchall() == [(2,)]
    assert orphaned_wal_path(db).exists() and not db.with_name(db.name + ".wal").exists()


FOREIGN_WRITER = """
import os, signal, sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("SET checkpoint_threshold = '1GB'")
con.execute("CREATE TABLE scratch AS SELECT 42 AS answer")
os.kill(os.getpid(), signal.SIGKILL)
"""
