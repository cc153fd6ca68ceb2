"""Who may read what a run writes: the database, its lock and work files, and the report folder
are the owner's alone by default, readable by the owner's group with `[security] group_readable`;
verdicts and purges keep the database's modes, reports follow it. Every test runs under the usual
umask 022, so nothing here relies on a careful umask."""
from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from pipeline.ops import permissions
from flows import purge
from pipeline.publish.report import write_report
from pipeline.settings import Settings, deep_merge, default_config
from flows import run_local
from pipeline.ops.verdicts import record_verdict
from pipeline.ops.workspace import building_path, lock_path

GROUP = Settings(deep_merge(default_config(), {"security": {"group_readable": True}}))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _run_watching(input_dir: Path, db: Path, settings: Settings) -> dict[str, int]:
    """Run, and note the modes of the lock and the work file while the run holds them."""
    seen: dict[str, int] = {}

    def on_stage(name: str) -> None:
        if name == "publish":
            seen["lock"] = mode(lock_path(db))
            seen["work"] = mode(building_path(db))
            seen["umask"] = os.umask(0o077)
            os.umask(seen["umask"])

    run_local(input_dir, db, settings, on_stage=on_stage)
    return seen


def test_a_run_writes_files_its_owner_alone_may_read(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "out" / "g.duckdb"
    seen = _run_watching(contract_example, db, Settings())
    assert seen == {"lock": 0o600, "work": 0o600, "umask": 0o077}  # DuckDB's own files (WAL, spill) too
    assert mode(db) == 0o600
    assert mode(db.parent) == 0o700  # a folder the run created
    assert os.umask(0o022) == 0o022  # the caller's umask is back


def test_an_existing_world_readable_database_is_narrowed_by_the_next_run(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    db.chmod(0o644)  # as written before this rule, under umask 022
    run_local(contract_example, db, Settings())
    assert mode(db) == 0o600


def test_group_readable_opens_the_database_to_the_owners_group_only(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "out" / "g.duckdb"
    seen = _run_watching(contract_example, db, GROUP)
    assert seen == {"lock": 0o660, "work": 0o640, "umask": 0o027}
    assert mode(db) == 0o640 and mode(db.parent) == 0o750


def test_verdicts_and_purges_keep_the_database_modes(contract_example: Path, tmp_path: Path) -> None:
    shared, private = tmp_path / "shared.duckdb", tmp_path / "private.duckdb"
    run_local(contract_example, shared, GROUP)
    run_local(contract_example, private, Settings())
    for db, expected in ((shared, 0o640), (private, 0o600)):
        record_verdict(db, "user_week:bob:2026-10-05", "unsure", now=datetime(2026, 10, 12))
        assert mode(db) == expected
        purge(db, date(2026, 1, 1), now=datetime(2026, 10, 12))
        assert mode(db) == expected


def test_the_report_folder_and_files_follow_the_database(contract_example: Path, tmp_path: Path) -> None:
    private, shared = tmp_path / "private.duckdb", tmp_path / "shared.duckdb"
    run_local(contract_example, private, Settings())
    run_local(contract_example, shared, GROUP)

    out = tmp_path / "reports" / "private"
    summary = write_report(private, out, min_team_size=1, include_people=True)
    assert mode(out) == 0o700 and {mode(f) for f in summary.files} == {0o600}
    assert {p for p in out.iterdir()} == set(summary.files)  # every file it wrote is checked

    out_shared = tmp_path / "reports" / "shared"
    summary = write_report(shared, out_shared, min_team_size=1)
    assert mode(out_shared) == 0o750 and {mode(f) for f in summary.files} == {0o640}

    explicit = write_report(shared, tmp_path / "reports" / "explicit", min_team_size=1, group_readable=False)
    assert {mode(f) for f in explicit.files} == {0o600}


def test_a_report_into_an_existing_folder_keeps_the_folder_but_narrows_its_files(
    contract_example: Path, tmp_path: Path
) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    out = tmp_path / "existing"
    out.mkdir(mode=0o755)
    (out / "report.html").write_text("an older report, world-readable")
    (out / "report.html").chmod(0o644)
    summary = write_report(db, out, min_team_size=1)
    assert mode(out) == 0o755  # may be a shared folder: not ours to change
    assert {mode(f) for f in summary.files} == {0o600}  # the rewritten report.html included


def test_modes_of_a_published_file(tmp_path: Path) -> None:
    path = tmp_path / "g.duckdb"
    assert permissions.modes_of(path) == permissions.OWNER_ONLY  # not there yet
    path.write_text("")
    path.chmod(0o640)
    assert permissions.modes_of(path) == permissions.GROUP_READ
    path.chmod(0o604)  # others but not the group: narrowed to the owner at the next publish
    assert permissions.modes_of(path) == permissions.OWNER_ONLY


def test_a_case_file_follows_the_database(contract_example: Path, tmp_path: Path) -> None:
    from pipeline.publish.case_file import write_case_file

    private, shared = tmp_path / "private.duckdb", tmp_path / "shared.duckdb"
    run_local(contract_example, private, Settings())
    run_local(contract_example, shared, GROUP)
    page = write_case_file(private, "user_week:bob:2026-10-05", tmp_path / "cases")
    assert mode(page) == 0o600 and mode(page.parent) == 0o700
    page = write_case_file(shared, "user_week:bob:2026-10-05", tmp_path / "shared-cases")
    assert mode(page) == 0o640 and mode(page.parent) == 0o750
