"""Who may read what Goodhart writes: the owner only (the default), or the owner and their group.

Everything that holds per-person results is created with these modes: the published database, its
lock and its work files (the private copy, write-ahead logs, DuckDB's spill files), and the report
folder with every file in it. A run takes its modes from `[security] group_readable`; a verdict or
a purge keeps the published database's; a report follows the database it is drawn from.

    with permissions.creating(modes):    # files created meanwhile get at most `modes.file`
        ...
    permissions.restrict(path, modes)    # and, explicitly, exactly these modes

The umask is per process: `creating` covers files that libraries create (DuckDB's write-ahead log
and spill files) while the block runs; `restrict` sets the final modes whatever the umask was.
Outputs added later (case files, alert payloads) go through `for_output`, `make_dir` and `restrict`.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Modes:
    file: int
    directory: int
    lock: int  # the run lock holds no data: with group access, group members may take it too

    @property
    def umask(self) -> int:
        """The umask under which new files and folders get at most these modes."""
        return 0o777 & ~self.directory


OWNER_ONLY = Modes(file=0o600, directory=0o700, lock=0o600)
GROUP_READ = Modes(file=0o640, directory=0o750, lock=0o660)


def for_group(group_readable: bool) -> Modes:
    """GROUP_READ when the owner's group may read, else OWNER_ONLY."""
    return GROUP_READ if group_readable else OWNER_ONLY


def modes_of(path: Path) -> Modes:
    """The modes an existing file was published with (GROUP_READ when its group may read it);
    OWNER_ONLY for a file that does not exist yet."""
    try:
        return for_group(bool(os.stat(path).st_mode & stat.S_IRGRP))
    except FileNotFoundError:
        return OWNER_ONLY


@contextmanager
def creating(modes: Modes) -> Iterator[None]:
    """Create files and folders under `modes.umask` while the block runs (the process's umask)."""
    previous = os.umask(modes.umask)
    try:
        yield
    finally:
        os.umask(previous)


def restrict(path: Path, modes: Modes) -> None:
    """Give `path` exactly its mode: `modes.directory` for a folder, else `modes.file`."""
    os.chmod(path, modes.directory if Path(path).is_dir() else modes.file)


def make_dir(path: Path, modes: Modes) -> None:
    """Create the folder `path` (and missing parents) with `modes.directory`. An existing folder
    keeps its mode (it may be shared, like /tmp): the files written into it are restricted."""
    with creating(modes):
        Path(path).mkdir(parents=True, exist_ok=True)


def for_output(db_path: Path, group_readable: bool | None) -> Modes:
    """The modes of an output drawn from the database at `db_path`: `group_readable` when given,
    else the database file's."""
    return modes_of(db_path) if group_readable is None else for_group(group_readable)
