"""Retention purge: raw usage before a date and everything derived from it goes, atomically, recorded.

The reference is a database built from the same input with those rows never given: after the
purge, the feature and score tables equal that database's (rules-only detection, deterministic).
"""
from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest

import flows
from flows import DERIVED_TABLES, purge, run_local
from pipeline.ops.runs import os_identity
from pipeline.ops.workspace import RunInProgressError, building_path, run_lock
from tests.reliability.conftest import copy_world, counts

pytestmark = pytest.mark.slow

CUTOFF = date(2026, 9, 14)  # the small world starts Monday 2026-09-07: its first week goes
NOW = datetime(2026, 11, 1, 12, 0)


def _without_usage_before(world: Path, target: Path) -> Path:
    """The world as it would be if usage before CUTOFF had never been given."""
    out = copy_world(world, target)
    cutoff = datetime(CUTOFF.year, CUTOFF.month, CUTOFF.day, tzinfo=timezone.utc)
    for dataset in ("token_usage", "invocations"):
        for path in sorted((out / dataset).glob("*.parquet")):
            kept = pl.read_parquet(path).filter(pl.col("ts") >= cutoff)  # ts: Datetime in UTC
            if kept.height:
                kept.write_parquet(path)
            else:
                path.unlink()
    return out


def _table(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(sql).fetchall()


@pytest.fixture(scope="module")
def purged(small_world: Path, fast_settings, tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("purge")
    db = base / "g.duckdb"
    world = copy_world(small_world, base / "world")
    run_local(world, db, fast_settings)
    before = counts(db)
    old_rows = {t: _table(db, f"SELECT count(*) FROM {t} WHERE ts < DATE '{CUTOFF}'")[0][0]
                for t in ("token_usage", "invocations")}
    summary = purge(db, CUTOFF, now=NOW)

    reference = base / "reference.duckdb"
    run_local(_without_usage_before(small_world, base / "reference-world"), reference, fast_settings)
    return {"db": db, "world": world, "before": before, "old_rows": old_rows, "summary": summary,
            "reference": reference}


def test_purge_deletes_raw_usage_before_the_date_and_counts_it(purged: dict) -> None:
    db, summary = purged["db"], purged["summary"]
    assert all(n > 0 for n in purged["old_rows"].values())
    for table in ("token_usage", "invocations"):
        assert _table(db, f"SELECT count(*) FROM {table} WHERE ts < DATE '{CUTOFF}'") == [(0,)]
        assert summary.rows_deleted[table] == purged["old_rows"][table]
        assert counts(db)[table] == purged["before"][table] - purged["old_rows"][table]
    # what is not usage stays
    for table in ("changes", "deployments", "people", "rejected_rows", "loaded_files"):
        assert counts(db)[table] == purged["before"][table], table


def test_derived_tables_equal_a_run_that_never_saw_the_purged_rows(purged: dict) -> None:
    db, reference = purged["db"], purged["reference"]
    comparable = {
        "user_week_scores": "user_id, week_start, tokens, round(cost_usd, 6), sessions, merged_changes, score, flagged",
        "session_scores": "session_id, user_id, started_at, tokens, linked_change_ids, deployed, score, flagged",
        "flags": "flag_id, level, score, detectors",
        "sessions": "session_id, user_id, started_at, tokens",
        "prompt_repeats": "*",
        "unmapped_identities": "*",
    }
    for table, columns in comparable.items():
        query = f"SELECT {columns} FROM {table} ORDER BY ALL"
        assert _table(db, query) == _table(reference, query), table
    assert _table(db, "SELECT min(week_start) FROM user_week_scores")[0][0] >= CUTOFF
    assert _table(db, "SELECT min(started_at) FROM session_scores")[0][0] >= datetime.combine(CUTOFF, datetime.min.time())
    for table in DERIVED_TABLES:
        expected = max(purged["before"].get(table, 0) - counts(db, (table,))[table], 0) if table in purged["before"] else None
        if expected is not None:
            assert purged["summary"].rows_deleted[table] == expected, table


def test_purge_is_recorded(purged: dict) -> None:
    rows = _table(purged["db"], "SELECT purge_id, before, requested_at, run_id, rows_deleted, os_user, host FROM purges")
    assert len(rows) == 1
    purge_id, before, requested_at, run_id, rows_deleted, *who = rows[0]
    assert purge_id == purged["summary"].purge_id and before == CUTOFF and requested_at == NOW
    assert tuple(who) == os_identity()  # who ran it
    assert run_id == _table(purged["db"], "SELECT run_id FROM runs")[0][0]  # scores keep the run they re-score
    assert json.loads(rows_deleted) == purged["summary"].rows_deleted


def test_rerun_on_the_same_folder_does_not_bring_purged_rows_back(purged: dict, fast_settings, tmp_path: Path) -> None:
    db = shutil.copyfile(purged["db"], tmp_path / "g.duckdb")
    run_local(purged["world"], db, fast_settings)
    assert _table(db, f"SELECT count(*) FROM token_usage WHERE ts < DATE '{CUTOFF}'") == [(0,)]
    assert _table(db, "SELECT sum(files_loaded) FROM runs WHERE run_id = (SELECT max(run_id) FROM runs)") == [(0,)]


def test_purge_is_atomic_and_waits_its_turn(purged: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    db = shutil.copyfile(purged["db"], tmp_path / "g.duckdb")
    later = CUTOFF + timedelta(days=3)
    reader = duckdb.connect(str(db), read_only=True)
    before = reader.sql("SELECT count(*) FROM token_usage").fetchall()
    published = db.read_bytes()

    def detection_fails(*args, **kwargs):
        raise RuntimeError("detection failed mid-purge")

    monkeypatch.setattr(flows.PlainSteps, "detect", detection_fails)
    with pytest.raises(RuntimeError, match="mid-purge"):
        purge(db, later, now=NOW)
    assert db.read_bytes() == published and not building_path(db).exists()  # nothing half-purged
    assert reader.sql("SELECT count(*) FROM token_usage").fetchall() == before
    monkeypatch.undo()

    with run_lock(db), pytest.raises(RunInProgressError):
        purge(db, later, now=NOW)  # a run holds the database
    assert db.read_bytes() == published

    summary = purge(db, later, now=NOW)
    assert reader.sql("SELECT count(*) FROM token_usage").fetchall() == before  # the reader's snapshot holds
    reader.close()
    assert summary.rows_deleted["token_usage"] > 0
    assert _table(db, "SELECT count(*) FROM purges") == [(2,)]


def test_purge_of_nothing_is_recorded_and_changes_no_score(purged: dict, tmp_path: Path) -> None:
    db = shutil.copyfile(purged["db"], tmp_path / "g.duckdb")
    scores = _table(db, "SELECT * EXCLUDE (evidence) FROM user_week_scores ORDER BY user_id, week_start")
    summary = purge(db, date(2000, 1, 1), now=NOW)
    assert summary.rows_deleted == {"token_usage": 0, "invocations": 0}
    assert _table(db, "SELECT * EXCLUDE (evidence) FROM user_week_scores ORDER BY user_id, week_start") == scores


def test_purge_needs_a_database_and_a_date(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        purge(tmp_path / "none.duckdb", CUTOFF, now=NOW)
    with pytest.raises(TypeError):
        purge(tmp_path / "none.duckdb", datetime(2026, 9, 14), now=NOW)  # type: ignore[arg-type]
