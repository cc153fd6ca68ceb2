"""The `runs` record: one row per run, written into the database the run publishes."""
from __future__ import annotations

import json
import os
import pwd
import socket
import uuid
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from pipeline.errors import UsageError
from pipeline.storage import connect


def new_run_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def utc_now() -> datetime:
    """Naive UTC, the convention of every timestamp in the database."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def code_version() -> str:
    try:
        return metadata.version("goodhart")
    except metadata.PackageNotFoundError:
        return "unknown"


def os_identity() -> tuple[str, str]:
    """(OS account, host) of this process: the account of its effective user id (not $USER, which
    anyone can set), or the bare id when the system has no name for it."""
    uid = os.geteuid()
    try:
        account = pwd.getpwuid(uid).pw_name
    except KeyError:
        account = str(uid)
    return account, socket.gethostname()


def recorded_config(config: dict[str, Any]) -> dict[str, Any]:
    """The settings as a run records them: each alert's destination (a webhook URL, mail
    credentials) withheld, its kind kept ('slack:(withheld)'). The fingerprint key is never a setting."""
    alerts = config.get("alerts")
    if not isinstance(alerts, list):
        return config
    withheld = [
        {**entry, "to": entry["to"].partition(":")[0] + ":(withheld)"}
        if isinstance(entry, dict) and isinstance(entry.get("to"), str) else entry
        for entry in alerts
    ]
    return {**config, "alerts": withheld}


def start_run(
    con: duckdb.DuckDBPyConnection, run_id: str, started_at: datetime, input_dir: Path, config: dict[str, Any]
) -> None:
    """Open the run's record: who runs it (OS account and host), on what, with which settings."""
    os_user, host = os_identity()
    con.execute(
        "INSERT INTO runs (run_id, started_at, status, input_dir, config, code_version, os_user, host) "
        "VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
        [run_id, started_at, str(input_dir), json.dumps(recorded_config(config), default=str), code_version(),
         os_user, host],
    )


def finish_run(
    con: duckdb.DuckDBPyConnection, run_id: str, inputs_seen: list[str], error: str | None = None
) -> None:
    """Close the run record with the loader's totals (from run_datasets) and the end time; with an
    `error`, as a failed run that published its load only."""
    con.execute(
        """
        UPDATE runs SET
            ended_at = ?,
            status = CASE WHEN ? IS NULL THEN 'completed' ELSE 'failed' END,
            error = ?,
            inputs_seen = ?,
            files_loaded = totals.files_loaded,
            files_skipped = totals.files_skipped,
            rows_given = totals.rows_given,
            rows_loaded = totals.rows_loaded,
            rows_rejected = totals.rows_rejected,
            rows_unpriced = totals.rows_unpriced
        FROM (
            SELECT sum(files_loaded) AS files_loaded, sum(files_skipped) AS files_skipped,
                   sum(rows_given) AS rows_given, sum(rows_loaded) AS rows_loaded,
                   sum(rows_rejected) AS rows_rejected, sum(rows_unpriced) AS rows_unpriced
            FROM run_datasets WHERE run_id = ?
        ) AS totals
        WHERE runs.run_id = ?
        """,
        [utc_now(), error, error, inputs_seen, run_id, run_id],
    )


def close_run(db_path: Path, run_id: str, inputs_seen: list[str], error: str | None = None) -> None:
    """Close the run's record in the database at `db_path` (finish_run) and checkpoint it, ready to publish."""
    with connect(db_path) as con:
        finish_run(con, run_id, inputs_seen, error)
        con.execute("CHECKPOINT")


class EmptyDatasetError(UsageError):
    """A required dataset holds no rows after the load: nothing can be detected from nothing."""


def empty_dataset_error(why: str, db_path: Path) -> EmptyDatasetError:
    return EmptyDatasetError(
        f"{why}; nothing was scored. The load is published: see rejected_rows in {db_path} (or pass --allow-empty)"
    )
