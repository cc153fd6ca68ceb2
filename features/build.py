"""Build the feature tables from the raw tables, one SQL file per table, in dependency order."""
from __future__ import annotations

import re
from collections.abc import Mapping

import duckdb

from pipeline.storage import read_sql

VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Each name is both the table and the file features/sql/<name>.sql that selects it.
FEATURE_TABLES: tuple[str, ...] = (
    "sessions",
    "change_deployments",
    "session_links",
    "change_attribution",
    "deployment_attribution",
    "prompt_repeats",
    "session_features",
    "user_week_features",
    "peer_baselines",
    "user_week_peer_features",
)


def set_variables(con: duckdb.DuckDBPyConnection, variables: Mapping[str, float | int]) -> None:
    """Expose settings to the SQL as getvariable(name); a name must be a plain identifier (it is SQL text)."""
    for name, value in variables.items():
        if not isinstance(name, str) or not VARIABLE_NAME.fullmatch(name):
            raise ValueError(f"not a usable variable name: {name!r}")
        con.execute(f"SET VARIABLE {name} = $value", {"value": value})


def build_features(
    con: duckdb.DuckDBPyConnection,
    variables: Mapping[str, float | int],
    tables: tuple[str, ...] = FEATURE_TABLES,
) -> dict[str, int]:
    """(Re)build every feature table; returns rows per table."""
    set_variables(con, variables)
    con.execute(read_sql("features", "macros"))
    rows: dict[str, int] = {}
    for table in tables:
        try:
            con.execute(f"CREATE OR REPLACE TABLE {table} AS {read_sql('features', table)}")
        except duckdb.Error as error:
            raise RuntimeError(f"building feature table {table!r} failed: {error}") from error
        rows[table] = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    return rows
