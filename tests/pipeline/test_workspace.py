"""Atomic publish: readers see the old file or the new one, never a half-written one."""
from pathlib import Path

import pytest

from pipeline.storage import connect
from pipeline.workspace import RunInProgressError, building, building_path, run_lock


def _write(db: Path, value: int) -> None:
    with connect(db) as con:
        con.execute("CREATE OR REPLACE TABLE t AS SELECT ? AS v", [value])
        con.execute("CHECKPOINT")


def _read(db: Path) -> int:
    with connect(db, read_only=True) as con:
        return con.sql("SELECT v FROM t").fetchall()[0][0]


def test_publish_replaces_file_while_a_reader_stays_attached(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    _write(db, 1)
    reader = connect(db, read_only=True)
    with run_lock(db), building(db) as work:
        assert work == building_path(db) and work.exists()
        _write(work, 2)
        assert reader.sql("SELECT v FROM t").fetchall() == [(1,)]  # not the build in progress
    assert reader.sql("SELECT v FROM t").fetchall() == [(1,)]  # its snapshot stays readable
    reader.close()
    assert _read(db) == 2
    assert not building_path(db).exists()


def test_failed_build_leaves_published_file_untouched(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    _write(db, 1)
    with pytest.raises(ValueError), run_lock(db), building(db) as work:
        _write(work, 2)
        raise ValueError("stage failed")
    assert _read(db) == 1
    assert not building_path(db).exists()


def test_second_run_on_same_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    with run_lock(db):
        with pytest.raises(RunInProgressError, match="another run"):
            with run_lock(db):
                pass
    with run_lock(db):  # released
        pass


def test_stale_build_from_a_killed_run_is_discarded(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    _write(db, 1)
    building_path(db).write_bytes(b"half-written garbage")
    with run_lock(db), building(db) as work:
        assert _read(work) == 1  # a fresh copy of the published file, not the garbage
