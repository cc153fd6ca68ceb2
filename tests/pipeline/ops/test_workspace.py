"""Atomic publish: readers see the old file or the new one, never a half-written one."""
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from pipeline.storage import connect
from pipeline.ops import workspace
from pipeline.ops.workspace import (RunInProgressError, WriterActiveError, building, building_path, clone_or_copy, lock_path,
                                run_lock, writer_pid)


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


@contextmanager
def _held_open(db: Path, *, read_only: bool) -> Iterator[int]:
    """Another process with a DuckDB connection on `db`; yields its pid."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == 'ro'); "
         "print('open', flush=True); sys.stdin.read()", str(db), "ro" if read_only else "rw"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        yield holder.pid
    finally:
        holder.communicate("")


def test_a_writer_is_told_apart_from_readers(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    _write(db, 1)
    assert writer_pid(db) is None
    with _held_open(db, read_only=True):
        assert writer_pid(db) is None
    with _held_open(db, read_only=False) as pid:
        assert writer_pid(db) == pid
    assert writer_pid(tmp_path / "missing.duckdb") is None


def test_a_run_refuses_to_start_while_another_process_writes_the_database(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    _write(db, 1)
    with _held_open(db, read_only=False) as pid, pytest.raises(WriterActiveError, match=f"process {pid}"):
        with run_lock(db), building(db):
            pass
    assert not building_path(db).exists() and _read(db) == 1


def test_a_run_refuses_to_publish_over_a_writer_that_came_meanwhile(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    _write(db, 1)
    writer = ExitStack()
    with pytest.raises(WriterActiveError):
        with run_lock(db), building(db) as work:
            _write(work, 2)
            writer.enter_context(_held_open(db, read_only=False))  # opens the published file mid-run
    writer.close()
    assert _read(db) == 1  # the writer's file was not swapped away
    assert not building_path(db).exists()  # the build was discarded


def test_the_lock_file_exists_only_while_held_and_a_waiter_takes_the_new_one(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    order: list[str] = []
    first_holds, second_done = threading.Event(), threading.Event()

    def second() -> None:
        first_holds.wait()
        with run_lock(db, wait=True):
            order.append("second")
            assert lock_path(db).exists()
        second_done.set()

    waiter = threading.Thread(target=second)
    waiter.start()
    with run_lock(db):
        assert lock_path(db).exists()
        first_holds.set()
        with pytest.raises(RunInProgressError):  # not waiting: refused at once
            with run_lock(db):
                pass
        order.append("first")
    assert second_done.wait(30)
    waiter.join()
    assert order == ["first", "second"]
    assert not lock_path(db).exists()


# A folder on a filesystem that clones (XFS with reflink, btrfs) to prove the clone on, e.g.
#   truncate -s 2G x.img && mkfs.xfs -m reflink=1 x.img && mount -o loop x.img /mnt/x
# then GOODHART_TEST_CLONE_DIR=/mnt/x pytest tests/pipeline/ops/test_workspace.py
CLONE_DIR = os.environ.get("GOODHART_TEST_CLONE_DIR")


@pytest.mark.skipif(not CLONE_DIR, reason="set GOODHART_TEST_CLONE_DIR to a folder on a filesystem that clones")
def test_the_private_copy_is_a_clone_where_the_filesystem_can() -> None:
    with tempfile.TemporaryDirectory(dir=CLONE_DIR) as name:
        _build_on_a_filesystem_that_clones(Path(name))


def _build_on_a_filesystem_that_clones(folder: Path) -> None:
    db = folder / "g.duckdb"
    with connect(db) as con:  # ~100 MB of incompressible rows
        con.execute("CREATE TABLE t AS SELECT md5(i::VARCHAR) || md5((i + 1)::VARCHAR) AS v FROM range(1500000) r(i)")
        con.execute("CHECKPOINT")
    size = db.stat().st_size
    free = os.statvfs(folder).f_bfree
    with run_lock(db), building(db) as work:
        assert os.statvfs(folder).f_bfree > free - size // os.statvfs(folder).f_frsize // 10  # blocks shared
        with connect(work) as con:
            con.execute("CREATE OR REPLACE TABLE t AS SELECT 'new' AS v")
            con.execute("CHECKPOINT")
        with connect(db, read_only=True) as con:  # the published file is untouched by the copy's writes
            assert con.sql("SELECT count(*) FROM t").fetchall() == [(1500000,)]
    assert _read_v(db) == "new"


def _read_v(db: Path) -> str:
    with connect(db, read_only=True) as con:
        return con.sql("SELECT v FROM t").fetchall()[0][0]


def test_the_private_copy_is_a_byte_copy_where_the_filesystem_cannot_clone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_clone(*args: object) -> None:
        raise OSError(95, "Operation not supported")

    monkeypatch.setattr(workspace.fcntl, "ioctl", no_clone)
    source, target = tmp_path / "a.bin", tmp_path / "b.bin"
    source.write_bytes(os.urandom(3_000_000))
    assert clone_or_copy(source, target) is False
    assert target.read_bytes() == source.read_bytes()
