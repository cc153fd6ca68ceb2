"""Build a run into a private copy of the database and publish it with one atomic rename.

Analysts' read-only connections keep reading the last published file while a run builds; they
never see a half-written one. A lock file serialises runs on the same database (and exists only
while a run holds it). A run refuses to start, and to publish, while another process holds the
published file open for writing: the swap would silently drop that process's later writes.

Every file here is created with the run's `permissions.Modes` (owner-only by default); without
modes given, the published file's own are kept (a verdict or a purge does not widen or narrow them).
"""
from __future__ import annotations

import fcntl
import os
import shutil
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.ops import permissions
from pipeline.ops.permissions import Modes


FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int), the reflink ioctl


class RunInProgressError(RuntimeError):
    """Another run holds the database's lock."""


class WriterActiveError(RunInProgressError):
    """Another process holds the published file open for writing: a swap would lose its writes."""


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".lock")


def building_path(db_path: Path) -> Path:
    return db_path.with_name(f".{db_path.name}.building")


def orphaned_wal_path(db_path: Path) -> Path:
    return db_path.with_name(f".{db_path.name}.wal.orphaned")


def _remove(path: Path) -> None:
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)


@contextmanager
def run_lock(db_path: Path, *, wait: bool = False, modes: Modes | None = None) -> Iterator[None]:
    """Hold the database's run lock; raise RunInProgressError at once when busy and not waiting.

    The lock file exists only while held: the holder removes it before letting go, and a waiter
    that wakes on a removed file takes the lock again on the file now at the path. It is created
    with `modes.lock` (default: after the published file's modes), so does a missing folder.
    """
    modes = modes or permissions.modes_of(db_path)
    if not db_path.parent.is_dir():
        permissions.make_dir(db_path.parent, modes)
    path = lock_path(db_path)
    while True:
        fd = _open_lock(path, modes)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise RunInProgressError(f"another run is writing {db_path}; try again when it ends") from None
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _open_lock(path: Path, modes: Modes) -> int:
    """Open (or create, with `modes.lock`) the lock file. A lock file this user may not open is
    another account's, held by its run (it exists only while held)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, modes.lock)
    except PermissionError:
        raise RunInProgressError(
            f"another account's run holds {path}; try again when it ends (runs and verdicts of several "
            "accounts need [security] group_readable, docs/security.md)"
        ) from None
    if os.fstat(fd).st_uid == os.geteuid():
        os.fchmod(fd, modes.lock)  # the umask may have narrowed it
    return fd


def writer_pid(db_path: Path) -> int | None:
    """The process holding `db_path` open for writing (DuckDB takes a write lock on the file of a
    read-write connection, a read lock for read-only), or None. Asks the kernel without taking a
    lock, so neither readers nor a writer opening the file meanwhile are disturbed. -1: a writer
    whose pid the kernel does not tell."""
    try:
        fd = os.open(db_path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if hasattr(fcntl, "F_OFD_GETLK"):  # Linux: query without locking
            query = struct.pack("hhqqi4x", fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0)
            kind, _, _, _, pid = struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_OFD_GETLK, query))
            return None if kind == fcntl.F_UNLCK else (pid if pid > 0 else -1)
        try:  # elsewhere: a shared lock is refused only while someone holds a write lock
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return -1
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def clone_or_copy(source: Path, target: Path) -> bool:
    """Copy `source` to `target` as a copy-on-write clone where the filesystem can make one (XFS
    with reflink, btrfs, bcachefs: instant whatever the size, and the copy's blocks are shared until
    written), else byte by byte. True when cloned. A run's private copy grows with the history;
    cloned, it costs nothing."""
    try:
        with open(source, "rb") as src, open(target, "wb") as dst:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
        return True
    except OSError:  # not a filesystem that clones (ext4, tmpfs, ...), or another filesystem
        shutil.copyfile(source, target)
        return False


def refuse_if_writer(db_path: Path) -> None:
    """Raise WriterActiveError when another process holds `db_path` open for writing."""
    pid = writer_pid(db_path)
    if pid is not None:
        who = f"process {pid}" if pid > 0 else "another process"
        raise WriterActiveError(
            f"{db_path} is open for writing by {who}; publishing now would lose its writes. "
            "Close it (open the file read-only to query; record verdicts with goodhart label) and try again"
        )


@contextmanager
def building(db_path: Path, *, modes: Modes | None = None) -> Iterator[Path]:
    """Yield a private working copy of `db_path`; on success rename it over `db_path` atomically.

    The caller must hold `run_lock` and close every connection to the copy before the block ends.
    A failed or killed run leaves the published file untouched; its copy is removed next time.
    Files created meanwhile (the copy, its write-ahead log, spill files) get at most `modes.file`
    and the published file exactly it (default: the published file's current modes).
    """
    refuse_if_writer(db_path)
    modes = modes or permissions.modes_of(db_path)
    with permissions.creating(modes):
        yield from _build(db_path, modes)


def _build(db_path: Path, modes: Modes) -> Iterator[Path]:
    work = building_path(db_path)
    _remove(work)
    if db_path.exists():
        clone_or_copy(db_path, work)
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
    try:
        refuse_if_writer(db_path)  # a writer that opened the file while we built
    except WriterActiveError:
        _remove(work)
        raise
    foreign_wal = db_path.with_name(db_path.name + ".wal")
    if foreign_wal.exists():
        # the published file's own write-ahead log: something other than goodhart opened it for
        # writing and has not checkpointed (or was killed). Left there, it would not match the new
        # file, and DuckDB would refuse to open it: keep it aside instead.
        os.replace(foreign_wal, orphaned_wal_path(db_path))
        permissions.restrict(orphaned_wal_path(db_path), modes)
    permissions.restrict(work, modes)
    os.replace(work, db_path)
    directory = os.open(db_path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
