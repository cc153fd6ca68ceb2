"""Published files are written in DuckDB 1.4's storage format, so clients from 1.4 on open them."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from pipeline.settings import Settings
from flows import run_local
from pipeline.storage import STORAGE_VERSION, connect, create_database, create_raw_tables, storage_version

# a Python with an older duckdb (e.g. `python -m venv /tmp/duck14 && /tmp/duck14/bin/pip install
# 'duckdb>=1.4,<1.5'`): when set, the published file is opened with it too
OLD_DUCKDB_PYTHON = os.environ.get("GOODHART_OLD_DUCKDB_PYTHON")


def _version(db: Path) -> str:
    with duckdb.connect(str(db), read_only=True) as con:
        return storage_version(con)


def test_a_new_file_gets_the_storage_version_and_keeps_it_through_writes(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    with connect(db) as con:
        assert storage_version(con) == f"{STORAGE_VERSION}+"
        con.execute("CREATE TABLE t AS SELECT range AS i, 'x' || range AS s, [range] AS l FROM range(100000)")
    with connect(db) as con:  # reopened and rewritten: the format is the file's, not the connection's
        con.execute("CREATE OR REPLACE TABLE t AS SELECT i + 1 AS i, s, l, {'i': i} AS st FROM t")
        con.execute("CHECKPOINT")
    assert _version(db) == "v1.4.0+"


def test_an_existing_file_keeps_its_own_version(tmp_path: Path) -> None:
    db = tmp_path / "newer.duckdb"
    create_database(db, "v1.5.0")
    with connect(db) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS i")
    assert _version(db) == "v1.5.0+"


def test_read_only_never_creates_a_file_and_plain_clients_share_the_file(tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    with pytest.raises(duckdb.IOException):
        connect(db, read_only=True)
    assert not db.exists()
    with connect(db) as con, duckdb.connect(str(db)) as plain:  # no configuration for DuckDB to refuse
        con.execute("CREATE TABLE t AS SELECT 1 AS i")
        assert plain.sql("SELECT i FROM t").fetchall() == [(1,)]


def test_a_published_run_is_in_the_storage_version(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    run_local(contract_example, db, Settings())  # a second run works on a copy of the first's file
    assert _version(db) == "v1.4.0+"
    if OLD_DUCKDB_PYTHON:
        opened = subprocess.run(
            [OLD_DUCKDB_PYTHON, "-c", "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
             "print(duckdb.__version__, con.sql('SELECT count(*) FROM flagged_user_weeks').fetchall())", str(db)],
            capture_output=True, text=True, timeout=60,
        )
        assert opened.returncode == 0, opened.stderr
        assert opened.stdout.split()[0] < "2", opened.stdout  # it really was an older duckdb


def test_a_database_from_before_the_pinned_format_moves_to_it_at_its_next_run(
    contract_example: Path, tmp_path: Path
) -> None:
    from datetime import datetime

    from pipeline.ops.verdicts import record_verdict

    published = tmp_path / "v14.duckdb"
    run_local(contract_example, published, Settings())
    db = tmp_path / "g.duckdb"  # the same run, as DuckDB 2.0 writes by default (the format of older releases)
    with duckdb.connect() as con:
        con.execute("ATTACH $old AS old (READ_ONLY)", {"old": str(published)})
        con.execute("ATTACH $new AS new", {"new": str(db)})
        con.execute("COPY FROM DATABASE old TO new")
    assert _version(db).startswith("v2")
    (flag_id,), = duckdb.connect(str(db), read_only=True).sql("SELECT flag_id FROM flags LIMIT 1").fetchall()
    record_verdict(db, flag_id, "confirmed", now=datetime(2026, 10, 20), note="kept across the move")
    assert _version(db).startswith("v2")  # a verdict alone does not move it

    run_local(contract_example, db, Settings())
    assert _version(db) == f"{STORAGE_VERSION}+"
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT flag_id, verdict, note FROM verdicts").fetchall() == [
            (flag_id, "confirmed", "kept across the move")]
        assert con.sql("SELECT count(*) FROM runs").fetchall() == [(2,)]
        assert con.sql("SELECT verdict FROM flagged_user_weeks WHERE flag_id = $f", params={"f": flag_id}).fetchall() \
            in ([("confirmed",)], [])  # shown beside the flag while it is raised


def test_a_database_from_before_an_optional_column_gains_it(tmp_path: Path) -> None:
    """changes.commit_shas_scope came later: the raw table of an older database gets the column,
    its rows NULL (the contract's default), and keeps them."""
    db = tmp_path / "g.duckdb"
    with connect(db) as con:
        create_raw_tables(con)
        con.execute("ALTER TABLE changes DROP COLUMN commit_shas_scope")
        con.execute("INSERT INTO changes (change_id, repo, file_id, position) VALUES ('c1', 'r', 1, 1)")
    with connect(db) as con:
        create_raw_tables(con)
        assert con.sql("SELECT change_id, commit_shas_scope FROM changes").fetchall() == [("c1", None)]


def test_a_database_from_before_an_absence_flag_reads_its_rows_as_reported(tmp_path: Path) -> None:
    """invocations.repo_unreported came later: rows loaded before it came from files with a repo column."""
    db = tmp_path / "g.duckdb"
    with connect(db) as con:
        create_raw_tables(con)
        con.execute("ALTER TABLE invocations DROP COLUMN repo_unreported")
        con.execute("INSERT INTO invocations (invocation_id, ts, user_id, session_id, file_id, position) "
                    "VALUES ('i1', TIMESTAMP '2026-10-05 09:00', 'u', 's', 1, 1)")
    with connect(db) as con:
        create_raw_tables(con)
        assert con.sql("SELECT invocation_id, repo_unreported FROM invocations").fetchall() == [("i1", False)]
