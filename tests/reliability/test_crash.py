"""A run killed with SIGKILL at any point never leaves a half-written database, and the next run
ends exactly where an uninterrupted one would.

Runs go through the real command (`goodhart run --no-prefect`) in a subprocess. The kill points
are deterministic: the test-only launcher `python -m tests.reliability.kill_at STAGE ...` runs the
command with an `on_stage` callback that SIGKILLs it when the run's STAGE starts (STAGE+SECONDS:
that long after), see tests/reliability/kill_at.py and the stage names of `flows.chain`.
"""
from __future__ import annotations

import hashlib
import shutil
import signal
import sys
from pathlib import Path

import duckdb
import pytest

from flows import run_local
from pipeline.ops.workspace import building_path
from tests.reliability.conftest import GOODHART, completed_runs, copy_world, counts, goodhart, start_goodhart

pytestmark = pytest.mark.slow

# mid-load, mid-features, built but not yet renamed
KILL_POINTS = ("load+0.2", "features+0.1", "publish")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def worlds(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """v1: the world's first 4 days of usage; v2: all of it (v1's files plus 10 more days)."""
    base = tmp_path_factory.mktemp("crash-worlds")
    full = copy_world(small_world, base / "v2")
    first = copy_world(small_world, base / "v1")
    for dataset in ("token_usage", "invocations"):
        for late in sorted((first / dataset).iterdir())[4:]:
            late.unlink()
    return first, full


@pytest.fixture(scope="module")
def uninterrupted(worlds: tuple[Path, Path], fast_settings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Counts after v1 then v2, neither interrupted (the same stages, in-process)."""
    db = tmp_path_factory.mktemp("crash-baseline") / "g.duckdb"
    run_local(worlds[0], db, fast_settings)
    after_v1 = counts(db)
    run_local(worlds[1], db, fast_settings)
    return {"v1": after_v1, "v2": counts(db)}


def _run(input_dir: Path, db: Path, config: Path, kill_at: str | None = None):
    command = [sys.executable, "-m", "tests.reliability.kill_at", kill_at] if kill_at else GOODHART
    return start_goodhart("run", "--input", str(input_dir), "--db", str(db), "--no-prefect", "--config", str(config),
                          cwd=db.parent, command=command)


def test_killed_first_run_leaves_no_database_and_the_rerun_completes(
    worlds: tuple[Path, Path], uninterrupted: dict, fast_config: Path, tmp_path: Path
) -> None:
    db = tmp_path / "g.duckdb"
    killed = _run(worlds[0], db, fast_config, kill_at="load+0.2")
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert not db.exists()  # nothing published: no database rather than half of one

    rerun = goodhart("run", "--input", str(worlds[0]), "--db", str(db), "--no-prefect", "--config", str(fast_config),
                     cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert counts(db) == uninterrupted["v1"]
    assert [status for _, status in completed_runs(db)] == ["completed"]
    assert not building_path(db).exists()


def test_run_killed_anywhere_leaves_the_last_published_database_byte_for_byte(
    worlds: tuple[Path, Path], uninterrupted: dict, fast_config: Path, fast_settings, tmp_path: Path
) -> None:
    published = tmp_path / "published.duckdb"
    run_local(worlds[0], published, fast_settings)
    before_sha, before_runs = _sha(published), completed_runs(published)
    assert counts(published) == uninterrupted["v1"]

    # one database per kill point, all killed runs at once
    dbs = {}
    for i, point in enumerate(KILL_POINTS):
        (tmp_path / f"k{i}").mkdir()
        dbs[point] = shutil.copyfile(published, tmp_path / f"k{i}" / "g.duckdb")
    procs = {point: _run(worlds[1], db, fast_config, kill_at=point) for point, db in dbs.items()}
    for point, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == -signal.SIGKILL, (point, proc.returncode, err)

    for point, db in dbs.items():
        assert _sha(db) == before_sha, point  # the published file was never written
        with duckdb.connect(str(db), read_only=True) as con:  # it opens, and holds the last completed run
            assert con.sql("SELECT run_id, status FROM runs ORDER BY started_at").fetchall() == before_runs, point
            for table in ("user_week_scores", "session_scores", "flags"):
                assert con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0] == uninterrupted["v1"][table]
        assert building_path(db).exists(), point  # the killed run's private copy, left for the next run to discard

    # the re-run completes and ends where an uninterrupted v1 + v2 ends
    for point, db in dbs.items():
        if point != "load+0.2":
            continue  # one is enough to prove it: each left the same published file and a stale copy
        rerun = goodhart("run", "--input", str(worlds[1]), "--db", str(db), "--no-prefect", "--config",
                         str(fast_config), cwd=db.parent)
        assert rerun.returncode == 0, (point, rerun.stderr)
        assert counts(db) == uninterrupted["v2"], point
        runs = completed_runs(db)
        assert len(runs) == 2 and runs[0] == before_runs[0] and runs[1][1] == "completed", point
        leftovers = sorted(p.name for p in db.parent.iterdir())
        assert leftovers == ["g.duckdb"], point  # no stale copy, no write-ahead log, no lock file
