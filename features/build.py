"""Build the feature tables from the raw tables: features/sql/<table>.sql, one file per table.

The files are models of the SQL model runner (pipeline/sql_models.py), which orders them by their
references and builds each; this module holds what is particular to the features: the Jinja
context (the peer features, declared once), the incremental settings and the build state
(feature_state). features/ imports nothing of pipeline/: the caller passes the loaded models,

    build_features(con, variables, incremental=True,
                   models=pipeline.sql_models.load("features", features.build.TEMPLATE_CONTEXT))

A full build recreates every table. An incremental build (`build_features(..., incremental=True)`)
rebuilds only the ISO weeks that the input rows loaded since the last build can change:

1. `change_deployments` is rebuilt whole (one row per change: small), keeping the previous one to
   compare with.
2. Seed weeks (`affected_weeks.sql`): every week of each session with new requests or prompts;
   merge weeks of changes that are new or changed (merge, author, deployment state), and every
   week of the sessions those changes are or may become linked to.
3. The weeks whose trailing windows (usual hours, peer baselines, one's own history) read a seed
   week join too: the next `max(usual_hours_weeks - 1, peer_weeks - 1, own_weeks)` weeks.
4. The event-grained tables (`-- kind: incremental_by_week` in their header) are computed from
   temporary copies of token_usage and invocations (they shadow the real tables, so the same SQL runs) holding those
   weeks' rows plus every event of the sessions with an event in them, so a session crossing into
   an untouched week is still computed whole. Only the rebuilt weeks' rows replace the old ones
   (rows of other weeks computed from a partial slice are dropped). The peer tables compute the
   rebuilt weeks only, from the whole user_week_features (in READ_WHOLE) their windows read; the
   small tables derived from them are rebuilt whole.

The result equals a full build (tests/pipeline/test_incremental.py checks it). A full build is
made instead when there is no previous build, when the feature SQL or settings changed since, or
when people, aliases or prices were loaded, or a bare repository name was resolved (they touch every
week).
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import duckdb

from features import sql_functions

VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# The user-week features compared with peers (peer_baselines, user_week_peer_features): each gets
# f_<level>_median and f_<level>_z for every level. Declared here once; the SQL is rendered from it.
# Each maps to its smallest spread: the MAD is floored there (and at 5% of the median), so a group
# whose members all read 0 (two own weeks without a merged change) gives a z of a few units for one
# change, not a division by almost nothing.
PEER_FEATURES: dict[str, float] = {
    "tokens": 1.0, "cost_usd": 0.001, "tokens_per_deployed_change": 1.0, "tokens_per_shipped_line": 0.1,
    "output_per_request": 1.0, "unshipped_token_share": 0.02, "unmerged_token_share": 0.02,
    "near_repeat_share": 0.02, "merged_changes": 0.5, "tiny_change_share": 0.02, "deployments_per_change": 0.05,
    "peak_3h_token_share": 0.02, "snapshot_window_share": 0.02, "codeless_repo_sessions": 0.5,
    "tokens_per_merged_line": 1.0, "exact_repeat_share_week": 0.02, "exact_repeat_unkept_share_week": 0.02,
}
PEER_LEVELS: tuple[str, ...] = ("team", "org", "company", "own")

# What the feature SQL is rendered with (Jinja): the runner loads the package "features" with it.
TEMPLATE_CONTEXT: dict[str, Any] = {"peer_features": PEER_FEATURES, "peer_scopes": PEER_LEVELS}

# --- incremental settings (the week-partitioned tables are those of kind incremental_by_week) ---
# Partitioned tables later SQL must read whole (trailing windows), not only the rebuilt weeks.
READ_WHOLE: frozenset[str] = frozenset({"user_hour_prompts", "user_week_features"})
# Raw tables shadowed by their rebuilt weeks' rows during an incremental build.
SLICED_INPUTS: tuple[str, ...] = ("token_usage", "invocations")
# Loading rows into these changes every week: the next build is a full one.
GLOBAL_INPUTS: tuple[str, ...] = ("people", "people_aliases", "prices")
# Full tables rebuilt before the seed weeks are found (affected_weeks compares the two versions).
SEED_INPUTS: tuple[str, ...] = ("change_deployments",)
# The query (kind query) giving the seed weeks.
SEED_QUERY = "affected_weeks"

FEATURE_STATE_DDL = """
-- grain: one row: what the feature tables were last built from
CREATE TABLE IF NOT EXISTS feature_state (
    built_at       TIMESTAMP NOT NULL,
    fingerprint    VARCHAR NOT NULL,   -- sha256 of the feature SQL and settings
    max_file_id    INTEGER NOT NULL,   -- loaded_files.file_id of the newest input file built from
    kind           VARCHAR NOT NULL,   -- 'full' | 'incremental'
    weeks_rebuilt  DATE[]              -- NULL for a full build
)
"""


class Models(Protocol):
    """The models of the package "features" as the SQL model runner loads them
    (pipeline.sql_models.load("features", TEMPLATE_CONTEXT)): features/ never imports pipeline/."""

    def order(self, select: str | None = None, *, kinds: Any = ...) -> tuple[str, ...]: ...
    def sql(self, name: str) -> str: ...
    def run_macros(self, con: duckdb.DuckDBPyConnection) -> None: ...
    def build(self, con: duckdb.DuckDBPyConnection, name: str, *, temporary: bool | None = None) -> None: ...
    def fingerprint(self) -> str: ...


@dataclass(frozen=True)
class FeatureBuild:
    """What a build did: rows per table, and the weeks rebuilt (None: a full build, and why)."""

    rows: dict[str, int]
    weeks: tuple[date, ...] | None
    reason: str


def set_variables(con: duckdb.DuckDBPyConnection, variables: Mapping[str, float | int]) -> None:
    """Expose settings to the SQL as getvariable(name); a name must be a plain identifier (it is SQL text)."""
    for name, value in variables.items():
        if not isinstance(name, str) or not VARIABLE_NAME.fullmatch(name):
            raise ValueError(f"not a usable variable name: {name!r}")
        con.execute(f"SET VARIABLE {name} = $value", {"value": value})


def feature_tables(models: Models) -> tuple[str, ...]:
    """Every feature table, in build order."""
    return models.order()


def week_partitioned(models: Models) -> tuple[str, ...]:
    """The tables an incremental build replaces week by week (kind incremental_by_week), in build order."""
    return models.order(kinds=("incremental_by_week",))


def build_features(
    con: duckdb.DuckDBPyConnection,
    variables: Mapping[str, float | int],
    tables: tuple[str, ...] | None = None,
    *,
    incremental: bool = False,
    models: Models,
) -> FeatureBuild:
    """(Re)build the feature tables: all (or `tables`, in build order), or only the weeks new rows
    can change. `models`: the package "features" loaded by the SQL model runner."""
    every = feature_tables(models)
    whole = tables is None or set(tables) >= set(every)
    tables = every if tables is None else tuple(t for t in every if t in tables)
    set_variables(con, variables)
    con.execute("RESET VARIABLE rebuild_weeks")  # set only while an incremental build replaces weeks
    models.run_macros(con)
    con.execute(FEATURE_STATE_DDL)
    fingerprint = _fingerprint(models, variables)
    max_file_id = con.sql("SELECT coalesce(max(file_id), 0) FROM loaded_files").fetchall()[0][0]
    why_full = _why_full(con, every, fingerprint) if incremental and whole else "a full build was asked"
    with sql_functions.registered(con):  # the Python functions the feature SQL calls
        if why_full is not None:
            for table in tables:
                build_table(con, table, models=models)
            weeks = None
        else:
            weeks = _rebuild_weeks(con, models, variables, max_file_id)
    rows = {table: con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0] for table in tables}
    if whole:
        con.execute("DELETE FROM feature_state")
        con.execute(
            "INSERT INTO feature_state VALUES (now()::TIMESTAMP, ?, ?, ?, ?)",
            [fingerprint, max_file_id, "full" if weeks is None else "incremental", None if weeks is None else list(weeks)],
        )
    reason = why_full if why_full is not None else f"{len(weeks)} week(s) touched by new rows"
    return FeatureBuild(rows, weeks, reason)


def build_table(con: duckdb.DuckDBPyConnection, table: str, *, temporary: bool = False, models: Models) -> None:
    """CREATE OR REPLACE one feature table (or a TEMP one, shadowing the real one) by the runner."""
    models.build(con, table, temporary=temporary)


def _rebuild_weeks(
    con: duckdb.DuckDBPyConnection, models: Models, variables: Mapping[str, float | int], max_file_id: int
) -> tuple[date, ...]:
    """Steps 1-4 of the module doc; returns the weeks rebuilt."""
    database = _quoted(con.sql("SELECT current_database()").fetchall()[0][0])
    since = con.sql("SELECT max_file_id FROM feature_state").fetchall()[0][0]
    if since == max_file_id:
        # nothing loaded since the last build: leave every table as it is (rebuilding the small
        # whole tables would only re-add their doubles in another order)
        return ()
    con.execute("SET VARIABLE since_file_id = $since", {"since": since})
    for table in SEED_INPUTS:
        con.execute(f"CREATE OR REPLACE TEMP TABLE __previous_{table} AS SELECT * FROM {table}")
        build_table(con, table, models=models)
    partitioned = week_partitioned(models)
    try:
        weeks = _weeks_to_rebuild(con, models, variables)
        if weeks:
            con.execute("SET VARIABLE rebuild_weeks = $weeks", {"weeks": list(weeks)})
            try:
                _slice_inputs(con, database)
                _replace_weeks(con, models, database)
            finally:
                con.execute("RESET VARIABLE rebuild_weeks")  # unset: the models build every week
                for table in (*SLICED_INPUTS, *partitioned):
                    con.execute(f"DROP TABLE IF EXISTS temp.main.{table}")
        for table in feature_tables(models):
            if table not in partitioned and table not in SEED_INPUTS:
                build_table(con, table, models=models)
    finally:
        for table in SEED_INPUTS:
            con.execute(f"DROP TABLE IF EXISTS temp.main.__previous_{table}")
    return weeks


IN_REBUILT_WEEKS = "week_start IN (SELECT unnest(getvariable('rebuild_weeks')))"


def _slice_inputs(con: duckdb.DuckDBPyConnection, database: str) -> None:
    """TEMP token_usage and invocations (step 4): the rebuilt weeks' events plus every event of the
    sessions with an event in those weeks. They shadow the real tables for the feature SQL."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __sessions_in_weeks AS "
        f"SELECT DISTINCT session_id FROM {database}.main.session_weeks WHERE {IN_REBUILT_WEEKS}"
    )
    try:
        # a time range holding all of it first: DuckDB skips row groups outside it unread
        (first_ts, last_ts), = con.sql(SLICE_RANGE_SQL.format(database=database)).fetchall()
        for raw in SLICED_INPUTS:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {raw} AS SELECT * FROM {database}.main.{raw} "
                f"WHERE ts BETWEEN $first_ts AND $last_ts "
                f"AND (iso_week(ts) IN (SELECT unnest(getvariable('rebuild_weeks'))) "
                f"OR session_id IN (SELECT session_id FROM __sessions_in_weeks))",
                {"first_ts": first_ts, "last_ts": last_ts},
            )
    finally:
        con.execute("DROP TABLE IF EXISTS temp.main.__sessions_in_weeks")


def _replace_weeks(con: duckdb.DuckDBPyConnection, models: Models, database: str) -> None:
    """Build each week-partitioned table from the slices and replace the rebuilt weeks' rows only
    (rows of other weeks come from partial slices and are dropped)."""
    for table in week_partitioned(models):
        build_table(con, table, temporary=True, models=models)
        con.execute(f"DELETE FROM {database}.main.{table} WHERE {IN_REBUILT_WEEKS}")
        con.execute(f"INSERT INTO {database}.main.{table} BY NAME SELECT * FROM temp.main.{table} WHERE {IN_REBUILT_WEEKS}")
        if table in READ_WHOLE:  # later tables read all its weeks: the real one from now on
            con.execute(f"DROP TABLE temp.main.{table}")


def _weeks_to_rebuild(
    con: duckdb.DuckDBPyConnection, models: Models, variables: Mapping[str, float | int]
) -> tuple[date, ...]:
    """Seed weeks plus the weeks whose trailing windows read them (step 3).

    The windows are applied once, not repeatedly: a later week joins because its usual hours or
    peer baselines read the seed weeks, and what it contributes to windows (its own volume,
    links and shipping) does not change, so it moves no further week.
    """
    seeds = {row[0] for row in con.sql(models.sql(SEED_QUERY)).fetchall()}
    if not seeds:
        return ()
    # a week's usual hours and team/org/company baselines read it and the weeks before it; its own-
    # history baseline reads the `own_weeks` weeks before it (not itself)
    forward = int(max(variables.get("usual_hours_weeks", 1) - 1, variables.get("peer_weeks", 1) - 1,
                      variables.get("own_weeks", 0), 0))
    reached = {row[0] for row in con.sql(
        FORWARD_WEEKS_SQL, params={"weeks": sorted(seeds), "forward": forward}
    ).fetchall()}
    return tuple(sorted(seeds | reached))


# from the first rebuilt week, or the first event of a session with an event in a rebuilt week,
# to the end of the last rebuilt week or the last such event
SLICE_RANGE_SQL = """
WITH
weeks AS (SELECT unnest(getvariable('rebuild_weeks')) AS week_start),
spans AS (
    SELECT min(first_ts) AS first_ts, max(last_ts) AS last_ts
    FROM {database}.main.session_weeks
    WHERE session_id IN (SELECT session_id FROM __sessions_in_weeks)
)
SELECT
    least((SELECT min(week_start) FROM weeks)::TIMESTAMP, (SELECT first_ts FROM spans)),
    greatest((SELECT max(week_start) FROM weeks) + INTERVAL 7 DAY, (SELECT last_ts FROM spans))
"""

# the `forward` weeks after each given week, up to the newest week with usage
FORWARD_WEEKS_SQL = """
WITH newest AS (
    SELECT iso_week(max(ts)) AS week_start
    FROM (SELECT max(ts) AS ts FROM token_usage UNION ALL SELECT max(ts) FROM invocations)
)
SELECT DISTINCT CAST(c.week_start + to_days(7 * step) AS DATE)
FROM (SELECT unnest($weeks::DATE[]) AS week_start) AS c, range(1, $forward + 1) AS r(step), newest
WHERE c.week_start + to_days(7 * step) <= newest.week_start
"""


def _why_full(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...], fingerprint: str) -> str | None:
    """Why this build cannot be incremental, or None when it can."""
    state = con.sql("SELECT fingerprint, max_file_id FROM feature_state").fetchall()
    if not state:
        return "no previous feature build"
    if state[0][0] != fingerprint:
        return "the feature SQL or settings changed since the last build"
    present = {row[0] for row in con.sql("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()}
    missing = [t for t in tables if t not in present]
    if missing:
        return f"feature table {missing[0]} is missing"
    since = state[0][1]
    for table in GLOBAL_INPUTS:
        if con.sql(f"SELECT 1 FROM {table} WHERE file_id > $since LIMIT 1", params={"since": since}).fetchall():
            return f"new {table} rows touch every week"
    if con.sql("SELECT 1 FROM resolved_repositories WHERE file_id > $since LIMIT 1", params={"since": since}).fetchall():
        return "a repository name was resolved in rows of any week"
    return None


def _fingerprint(models: Models, variables: Mapping[str, float | int]) -> str:
    """sha256 of the settings and every feature model (macros included) as rendered."""
    digest = hashlib.sha256(json.dumps(dict(variables), sort_keys=True, default=str).encode())
    digest.update(models.fingerprint().encode())
    return digest.hexdigest()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
