"""Retention purge: delete raw AI usage older than a date, and everything derived from it, atomically.

    summary = flows.purge(Path("goodhart.duckdb"), date(2026, 1, 1), now=utc_now())

deletes the `token_usage` and `invocations` rows with `ts` before DATE (00:00 UTC), then rebuilds
the feature tables, the score tables, flags and views from what is left, with the settings of the
last completed run (so a purge never re-tunes detection). The rebuild is flows.py's: this module
is handed it (`rederive`) with the tables it derives, and knows nothing of features or detectors. Like a run, it works on a private copy
under the run lock and publishes with one rename: readers see the database before or after the
purge, never half of it; a killed purge changes nothing. Each purge is recorded in `purges`, with
the OS account and host that ran it.

Not purged: changes, deployments and people (not usage); `rejected_rows` (raw text of rows that
were never loaded, prompt text already redacted); analysts' `verdicts`. Files loaded before are
still known by their content hash, so a rerun on the same input folder does not bring the purged
rows back; a *new* file holding old rows would load them again.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path

from pipeline.ingest.reconcile import recount_unmapped_identities
from pipeline.ops.runs import os_identity, utc_now
from pipeline.settings import Settings, deep_merge, default_config
from pipeline.storage import connect, create_raw_tables
from pipeline.ops.workspace import building, run_lock

PURGED_TABLES = ("token_usage", "invocations")  # raw usage, by its `ts`

# rederive(work, run_id, settings): rebuild every derived table of the database file `work`
Rederive = Callable[[Path, str, Settings], object]

PURGES_DDL = """
-- grain: one row per retention purge (goodhart purge --before DATE)
CREATE TABLE IF NOT EXISTS purges (
    purge_id      VARCHAR NOT NULL,
    before        DATE NOT NULL,         -- usage with ts before this day (00:00 UTC) was deleted
    requested_at  TIMESTAMP NOT NULL,
    completed_at  TIMESTAMP NOT NULL,
    run_id        VARCHAR,               -- the run whose settings and id the rebuilt scores keep
    rows_deleted  JSON NOT NULL,         -- table -> rows removed (raw: deleted; derived: fewer after the rebuild)
    os_user       VARCHAR,               -- who ran it: the OS account and host
    host          VARCHAR
);
ALTER TABLE purges ADD COLUMN IF NOT EXISTS os_user VARCHAR;  -- purges recorded before these columns: NULL
ALTER TABLE purges ADD COLUMN IF NOT EXISTS host VARCHAR;
"""


@dataclass(frozen=True)
class PurgeSummary:
    purge_id: str
    db_path: Path
    before: date
    requested_at: datetime
    rows_deleted: dict[str, int]  # table -> rows removed: token_usage, invocations and each derived table


def purge(
    db_path: Path, before: date, *, now: datetime, rederive: Rederive, derived_tables: tuple[str, ...],
    settings: Settings | None = None, wait: bool = False,
) -> PurgeSummary:
    """Delete raw usage with ts before `before` and rebuild what derives from it (`rederive`, which
    rebuilds `derived_tables`); publish atomically.

    `now` is the request time (recorded). `settings` default to those of the last completed run.
    Raises RunInProgressError when a run holds the database and `wait` is false.
    """
    db_path = Path(db_path)
    if isinstance(before, datetime) or not isinstance(before, date):
        raise TypeError(f"before must be a date, not {before!r}")
    if not db_path.is_file():
        raise FileNotFoundError(f"no database at {db_path}")
    requested_at = _naive_utc(now)
    purge_id = f"purge-{requested_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    cutoff = datetime.combine(before, time())

    with run_lock(db_path, wait=wait), building(db_path) as work:
        with connect(work) as con:
            create_raw_tables(con)
            con.execute(PURGES_DDL)
            last_run = con.sql(
                "SELECT run_id, config FROM runs WHERE status = 'completed' ORDER BY ended_at DESC LIMIT 1"
            ).fetchall()
            run_id, config = last_run[0] if last_run else (None, None)
            counts_before = _counts(con, derived_tables)
            con.begin()
            deleted = {}
            for table in PURGED_TABLES:
                deleted[table] = con.execute(f"DELETE FROM {table} WHERE ts < ?", [cutoff]).fetchall()[0][0]
            if any(deleted.values()):
                recount_unmapped_identities(con)  # its row counts held the deleted rows
            con.commit()

        rows_deleted = dict(deleted)
        if any(deleted.values()) and counts_before:  # something derived may hold the purged rows
            rederive(work, run_id or purge_id, settings or _settings_of(config))
            with connect(work) as con:
                counts_after = _counts(con, derived_tables)
            rows_deleted |= {t: max(n - counts_after.get(t, 0), 0) for t, n in counts_before.items()}

        with connect(work) as con:
            con.execute(
                "INSERT INTO purges (purge_id, before, requested_at, completed_at, run_id, rows_deleted, os_user, host) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [purge_id, before, requested_at, utc_now(), run_id, json.dumps(rows_deleted), *os_identity()],
            )
            con.execute("CHECKPOINT")
    return PurgeSummary(purge_id, db_path, before, requested_at, rows_deleted)


def _counts(con, tables: tuple[str, ...]) -> dict[str, int]:
    """Rows of each of `tables` that exists (names are constants, never input)."""
    present = {name for (name,) in con.sql("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
    return {t: con.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables if t in present}


def _settings_of(config_json: str | None) -> Settings:
    """The settings a run recorded (over today's defaults, for keys it predates); defaults without one."""
    if not config_json:
        return Settings()
    return Settings(deep_merge(default_config(), json.loads(config_json)))


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment
