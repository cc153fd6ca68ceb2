"""Build a run into a private copy of the database and publish it with one atomic rename.

Analysts' read-only connections keep reading the last published file while a run builds; they
never see a half-written one. A lock file serialises runs on the same database.
"""
from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class RunInProgressError(RuntimeError):
    """Another run holds the database's lock."""


def building_path(db_path: Path) -> Path:
    return db_path.with_name(f".{db_path.name}.building")


def orphaned_wal_path(db_path: Path) -> Path:
    return db_path.with_name(f".{db_path.name}.wal.orphaned")


def _remove(path: Path) -> None:
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)


@contextmanager
def run_lock(db_path: Path, *, wait: bool = False) -> Iterator[None]:
    """Hold the database's run lock; raise RunInProgressError at once when busy and not waiting."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with open(db_path.with_name(db_path.name + ".lock"), "a+") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise RunInProgressError(f"another run is writing {db_path}; try again when it ends") from None
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


@contextmanager
def building(db_path: Path) -> Iterator[Path]:
    """Yield a private working copy of `db_path`; on success rename it over `db_path` atomically.

    The caller must hold `run_lock` and close every connection to the copy before the block ends.
    A failed or killed run leaves the published file untouched; its copy is removed next time.
    """
    work = building_path(db_path)
    _remove(work)
    if db_path.exists():
        shutil.copyfile(db_path, work)
    try:
        yield work
    except BaseException:
        _remove(work)
        raise
    wal = work.with_name(work.name + ".wal")
    if wal.exists():
        raise RuntimeError(f"{work} still has a write-ahead log: a connection was left open")
    with open(work, "rb+") as fh:
        os.fsync(fh.fileno())
    foreign_wal = db_path.with_name(db_path.name + ".wal")
    if foreign_wal.exists():
        # the published file's own write-ahead log: something other than goodhart opened it for
        # writing and has not checkpointed (or was killed). Left there, it would not match the new
        # file, and DuckDB would refuse to open it: keep it aside instead.
        os.replace(foreign_wal, orphaned_wal_path(db_path))
    os.replace(work, db_path)
    directory = os.open(db_path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
