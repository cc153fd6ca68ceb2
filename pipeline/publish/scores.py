"""Publishing scores: weeks of feature rows read out for scoring, and scored weeks stored back
into the score tables, flags and analysts' views. Scoring itself is not here (flows.py hands the
detectors' output in), so this side needs no model library.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from pipeline import progress, sql_models
from pipeline.storage import has_table

SCORE_TABLES = ("user_week_scores", "session_scores", "flags")  # derived from the features, rebuilt by a purge
LEVELS = (("scored_user_weeks", "user_weeks"), ("scored_sessions", "sessions"))  # stored table, partition field
RUN_UP_TABLES = (("user_week_run_ups", "scored_user_weeks"), ("session_run_ups", "scored_sessions"))  # rows over stored ones
VERDICTS = "latest_verdicts"  # the publish model of analysts' verdicts, which the score tables apply
APPLIED_VERDICTS = "applied_verdicts"  # latest_verdicts as the last publish applied them


@dataclass(frozen=True)
class DetectPartition:
    """The feature rows of a few weeks: the unit of scoring. Models are fit per week
    (`score_level(..., fit_by="week_start")`), so partitions are independent and can be scored
    anywhere (in process, or on a Dask worker); the rules and texts run once per partition."""

    weeks: tuple[date, ...]
    user_weeks: pl.DataFrame
    sessions: pl.DataFrame


@dataclass(frozen=True)
class ScoredPartition:
    weeks: tuple[date, ...]
    user_weeks: pl.DataFrame
    sessions: pl.DataFrame


@dataclass(frozen=True)
class DetectSummary:
    user_weeks: int
    user_weeks_flagged: int
    sessions: int
    sessions_flagged: int
    wasted_cost_usd: float
    flags_by_severity: dict[str, int]
    sessions_flagged_through_week: int = 0  # of sessions_flagged: only as part of a flagged week (week_rule:...)
    every_week_because: str | None = None  # why an incremental run rescored every week (weeks_to_score)


DETECT_STATE_DDL = """
-- grain: one row: what the stored scores (scored_user_weeks, scored_sessions) were computed with
CREATE TABLE IF NOT EXISTS detect_state (
    scored_at    TIMESTAMP NOT NULL,
    fingerprint  VARCHAR NOT NULL    -- scoring_fingerprint: detector settings, code and libraries; publish SQL
)
"""


def scoring_fingerprint(detectors_fingerprint: str) -> str:
    """What the stored scores and the tables published from them are built with: the detectors
    (detectors.scoring.detectors_fingerprint) and the publish SQL."""
    publish_sql = sql_models.load("pipeline.publish").fingerprint()
    return hashlib.sha256(f"{detectors_fingerprint}\0{publish_sql}".encode()).hexdigest()


def weeks_to_score(
    con: duckdb.DuckDBPyConnection, weeks: Sequence[date] | None, fingerprint: str
) -> tuple[list[date] | None, str | None]:
    """The weeks a run rescores: `weeks` (None: every week), or every week, with the reason, when
    the stored scores were computed with other detector settings or code, or published with other
    SQL (`fingerprint`: scoring_fingerprint): a week is never scored with one threshold and its
    neighbour with another."""
    if weeks is None:
        return None, None
    if not has_table(con, "detect_state"):
        return None, "the detector settings of the stored scores are not recorded"
    stored = con.sql("SELECT fingerprint FROM detect_state").fetchall()
    if not stored or stored[0][0] != fingerprint:
        return None, "the detector settings or code, or the score tables' SQL, changed since the last scoring"
    return list(weeks), None


def partition_weeks(con: duckdb.DuckDBPyConnection, weeks: Sequence[date] | None = None,
                    *, max_rows: int = 0) -> list[tuple[date, ...]]:
    """The weeks to score (those of `weeks` with usage, or every week with usage) in order, cut
    into partitions of at most `max_rows` rows to score (user-weeks plus sessions) each, or of one
    week when that week alone holds more; `max_rows` 0: one week each."""
    found = con.sql(
        """
        SELECT week_start, sum(n) AS n
        FROM (SELECT week_start, count(*) AS n FROM user_week_peer_features GROUP BY ALL
              UNION ALL SELECT week_start, count(*) FROM session_features GROUP BY ALL)
        GROUP BY ALL ORDER BY week_start
        """
    ).fetchall()
    wanted = None if weeks is None else set(weeks)
    partitions: list[tuple[date, ...]] = []
    current: list[date] = []
    held = 0
    for week, n in found:
        if wanted is not None and week not in wanted:
            continue
        if current and held + n > max_rows:
            partitions.append(tuple(current))
            current, held = [], 0
        current.append(week)
        held += n
    return partitions + ([tuple(current)] if current else [])


def rows_to_score(con: duckdb.DuckDBPyConnection, weeks: Sequence[date] | None = None) -> int:
    """User-weeks plus sessions in `weeks` (every week when None)."""
    where = "" if weeks is None else "WHERE week_start IN (SELECT unnest($weeks::DATE[]))"
    params = {} if weeks is None else {"weeks": list(weeks)}
    return sum(
        con.sql(f"SELECT count(*) FROM {table} {where}", params=params).fetchall()[0][0]
        for table in ("user_week_peer_features", "session_features")
    )


def read_partition(con: duckdb.DuckDBPyConnection, weeks: Sequence[date]) -> DetectPartition:
    """The user-week and session feature rows of `weeks` in week and key order (so each week's
    fit is reproducible); no weeks: no rows, the columns only."""
    order = {"user_week_peer_features": "user_id", "session_features": "session_id"}
    return DetectPartition(tuple(weeks), *(
        con.sql(f"SELECT * FROM {table} WHERE week_start IN (SELECT unnest($weeks::DATE[])) ORDER BY week_start, {key}",
                params={"weeks": list(weeks)}).pl()
        for table, key in order.items()
    ))


def publish_scores(
    con: duckdb.DuckDBPyConnection, run_id: str, scored: Iterable[ScoredPartition], weeks: Sequence[date] | None,
    *, empty: Callable[[], ScoredPartition], fingerprint: str,
    run_ups: Callable[[duckdb.DuckDBPyConnection], tuple[pl.DataFrame, pl.DataFrame]] | None = None,
) -> DetectSummary:
    """Store the scored weeks (replacing those weeks, or everything when `weeks` is None) as they
    come, then publish the score tables, flags, views and root cause (`publish_models`). `empty()` is the
    scored partition of no rows, stored when there is no usage at all (the tables get their columns).
    `run_ups(con)`: user-week and session rows that replace stored ones (the run-up to a flagged week
    and its sessions, which read every stored week), kept in `user_week_run_ups` and
    `session_run_ups` and read over the stored tables by the score tables' SQL. `fingerprint`: what
    the weeks were scored with (scoring_fingerprint), recorded in `detect_state`."""
    con.execute("SET VARIABLE run_id = ?", [run_id])
    fresh = weeks is None or any(not has_table(con, table) for table, _ in LEVELS)
    if not fresh:
        for table, _ in LEVELS:
            con.execute(f"DELETE FROM {table} WHERE week_start IN (SELECT unnest($weeks::DATE[]))", {"weeks": list(weeks)})
    stored = 0
    for part in scored:
        _store(con, part, create=fresh and stored == 0)
        stored += 1
        progress.current().advance(len(part.weeks))
    if fresh and stored == 0:
        _store(con, empty(), create=True)
    con.execute(DETECT_STATE_DDL)
    con.execute("DELETE FROM detect_state")
    con.execute("INSERT INTO detect_state VALUES (now()::TIMESTAMP, ?)", [fingerprint])
    previous_run_ups = not fresh and all(has_table(con, table) for table, _ in RUN_UP_TABLES)
    try:
        for table, stored_table in RUN_UP_TABLES:
            if previous_run_ups:
                con.execute(f"CREATE OR REPLACE TEMP TABLE __previous_{table} AS SELECT * FROM {table}")
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM {stored_table} WHERE false")
        if run_ups is not None:
            for (table, _), rows in zip(RUN_UP_TABLES, run_ups(con), strict=True):
                con.register("__run_ups", rows)
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM __run_ups")
                con.unregister("__run_ups")
        publish_models(con, None if fresh or not previous_run_ups else weeks)
    finally:
        for table, _ in RUN_UP_TABLES:
            con.execute(f"DROP TABLE IF EXISTS temp.main.__previous_{table}")
    return summarise(con)


def publish_models(con: duckdb.DuckDBPyConnection, weeks: Sequence[date] | None) -> None:
    """Build the models of pipeline/publish/sql/ tagged `publish` (score tables, flags, shipped
    work, views, root cause) in order. With `weeks` (an incremental run, whose stored scores
    changed in those weeks only), the incremental_by_week ones (the score tables and flags) replace
    the rows of the weeks that can change (`weeks_to_republish`) instead of being rebuilt whole:
    at 100M token rows they would otherwise take most of a daily run."""
    package = sql_models.load("pipeline.publish")
    package.run_macros(con)
    names = package.order("publish", kinds=(*sql_models.MATERIALIZED, "script"))
    by_week = {name for name in names if package[name].kind == "incremental_by_week"}
    incremental = weeks is not None and all(has_table(con, name) for name in (*by_week, APPLIED_VERDICTS))
    if incremental:
        republish = weeks_to_republish(con, weeks, package.sql(VERDICTS))
        con.execute("SET VARIABLE republish_weeks = $weeks", {"weeks": republish})
    try:
        for name in names:
            if incremental and name in by_week:
                package.replace_weeks(con, name, "republish_weeks")
            else:
                package.build(con, name)
    finally:
        con.execute("RESET VARIABLE republish_weeks")
    # the verdicts the score tables now apply (`goodhart label` refreshes latest_verdicts at once,
    # so that table cannot tell the next run which verdicts are new to the score tables)
    con.execute(f"CREATE OR REPLACE TABLE {APPLIED_VERDICTS} AS SELECT * FROM {VERDICTS}")


def weeks_to_republish(con: duckdb.DuckDBPyConnection, weeks: Sequence[date], verdicts_sql: str) -> list[date]:
    """The weeks whose score-table and flag rows can change: those rescored now, those a run-up
    row entered or left (`__previous_*_run_ups`: the run-up tables before this run), and those of a
    flag whose latest verdict changed since the last publish (`verdicts_sql`: latest_verdicts as it
    is now, against applied_verdicts)."""
    changed_run_ups = " UNION ".join(
        f"SELECT week_start FROM (FROM {table} EXCEPT FROM __previous_{table}) "
        f"UNION SELECT week_start FROM (FROM __previous_{table} EXCEPT FROM {table})"
        for table, _ in RUN_UP_TABLES
    )
    rows = con.sql(
        f"""
        WITH
        changed_verdicts AS (
            SELECT flag_id FROM (FROM ({verdicts_sql}) EXCEPT FROM {APPLIED_VERDICTS})
            UNION
            SELECT flag_id FROM (FROM {APPLIED_VERDICTS} EXCEPT FROM ({verdicts_sql}))
        )
        SELECT unnest($weeks::DATE[]) AS week_start
        UNION {changed_run_ups}
        UNION SELECT week_start FROM user_week_scores WHERE flag_id IN (SELECT flag_id FROM changed_verdicts)
        UNION SELECT week_start FROM session_scores WHERE flag_id IN (SELECT flag_id FROM changed_verdicts)
        ORDER BY week_start
        """,
        params={"weeks": list(weeks)},
    ).fetchall()
    return [row[0] for row in rows]


def _store(con: duckdb.DuckDBPyConnection, part: ScoredPartition, *, create: bool) -> None:
    # week by week, as when each week was its own partition: stored a partition at a time, the
    # next daily run's features build took ~0.5 s longer on the 10M-daily world (docs/performance.md)
    for table, level in LEVELS:
        rows = getattr(part, level)
        for i, week in enumerate(part.weeks or (None,)):
            con.register("__scored", rows if week is None else rows.filter(pl.col("week_start") == week))
            verb = f"CREATE OR REPLACE TABLE {table} AS" if create and i == 0 else f"INSERT INTO {table} BY NAME"
            con.execute(f"{verb} SELECT * FROM __scored")
            con.unregister("__scored")


def summarise(con: duckdb.DuckDBPyConnection) -> DetectSummary:
    (uw, uw_flagged, wasted), = con.sql(
        "SELECT count(*), count(*) FILTER (WHERE flagged), coalesce(sum(wasted_cost_usd), 0) FROM user_week_scores"
    ).fetchall()
    (ss, ss_flagged, through_week), = con.sql(
        "SELECT count(*), count(*) FILTER (WHERE flagged), count(*) FILTER (WHERE flagged AND "
        "list_bool_and(list_transform(detectors, lambda d: starts_with(d, 'week_rule:')))) FROM session_scores"
    ).fetchall()
    by_severity = dict(con.sql("SELECT severity, count(*) FROM flags GROUP BY severity ORDER BY severity").fetchall())
    return DetectSummary(uw, uw_flagged, ss, ss_flagged, float(wasted), by_severity, through_week)


def detect_line(detect: DetectSummary) -> str:
    """What the detect step says when it ends."""
    every_week = f" (every week rescored: {detect.every_week_because})" if detect.every_week_because else ""
    return (f"scored {detect.user_weeks:,} user-weeks ({detect.user_weeks_flagged:,} flagged) and "
            f"{detect.sessions:,} sessions ({detect.sessions_flagged:,} flagged{through_week(detect)}); "
            f"wasted ${detect.wasted_cost_usd:,.2f}{every_week}")


def through_week(detect: DetectSummary) -> str:
    """', N only as part of a flagged week' when there are such session flags."""
    n = detect.sessions_flagged_through_week
    return f", {n:,} of them only as part of a flagged week" if n else ""
