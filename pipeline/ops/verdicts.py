"""Analysts' verdicts on flags: recorded into the published database, kept by every later run."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from pipeline.errors import UsageError
from pipeline.ops.runs import os_identity
from pipeline import sql_models
from pipeline.storage import connect, create_raw_tables
from pipeline.ops.workspace import building, run_lock

VERDICTS = ("confirmed", "legitimate", "unsure")


class UnknownFlagError(UsageError):
    """The flag id is not among the flags of the last run."""


@dataclass(frozen=True)
class VerdictPrecision:
    judged: int
    confirmed: int
    legitimate: int
    unsure: int

    @property
    def precision(self) -> float | None:
        """Confirmed gaming among flags judged either way (unsure left out)."""
        decided = self.confirmed + self.legitimate
        return self.confirmed / decided if decided else None


def record_verdict(
    db_path: Path, flag_id: str, verdict: str, *, now: datetime, note: str | None = None,
    analyst: str | None = None, wait: bool = True,
) -> None:
    """Record a verdict on a flag of the last run; published atomically like a run. The run's
    tables and views show it at once (a flag judged legitimate is dismissed by the next run).
    Beside the `analyst` named, the verdict records the OS account and host that recorded it."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
    if not db_path.is_file():
        raise UnknownFlagError(f"no database at {db_path}")
    with run_lock(db_path, wait=wait), building(db_path) as work:
        with connect(work) as con:
            create_raw_tables(con)
            flag = con.execute("SELECT evidence_key, run_id FROM flags WHERE flag_id = ?", [flag_id]).fetchall()
            if not flag:
                raise UnknownFlagError(f"no flag {flag_id!r} in the last run of {db_path}")
            (evidence_key, run_id), = flag
            con.execute("BEGIN")
            con.execute(
                "INSERT INTO verdicts (flag_id, evidence_key, verdict, note, analyst, recorded_at, run_id, os_user, host) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [flag_id, evidence_key, verdict, note, analyst, now, run_id, *os_identity()],
            )
            show_latest_verdict(con, flag_id)
            con.execute("COMMIT")
            con.execute("CHECKPOINT")


# the run's tables with a `verdict` column: the latest verdict on their flag when the run was built
JUDGED_TABLES = ("user_week_scores", "session_scores", "flags")


def show_latest_verdict(con: duckdb.DuckDBPyConnection, flag_id: str) -> None:
    """Refresh latest_verdicts and the run's verdict columns for one flag, as the next run would
    set them (the views read these tables)."""
    sql_models.load("pipeline.publish").build(con, "latest_verdicts")
    for table in JUDGED_TABLES:
        con.execute(
            f"UPDATE {table} SET verdict = (SELECT verdict FROM latest_verdicts WHERE flag_id = $flag) "
            "WHERE flag_id = $flag",
            {"flag": flag_id},
        )


def verdict_precision(db_path: Path) -> VerdictPrecision:
    """How the flags analysts judged turned out (latest verdict per flag)."""
    with connect(db_path, read_only=True) as con:
        counts = dict(con.sql(
            "SELECT verdict, count(*) FROM (SELECT arg_max(verdict, recorded_at) AS verdict FROM verdicts GROUP BY flag_id) "
            "GROUP BY verdict"
        ).fetchall())
    return VerdictPrecision(
        judged=sum(counts.values()), confirmed=counts.get("confirmed", 0),
        legitimate=counts.get("legitimate", 0), unsure=counts.get("unsure", 0),
    )
