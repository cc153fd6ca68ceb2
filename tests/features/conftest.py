"""Rows-in, rows-out fixtures for the feature SQL (dbt / SQLMesh unit-test style).

    def test_x(con):
        insert(con, "token_usage", [dict(ts="2026-10-05 09:00", session_id="s1", input_tokens=100)])
        build(con)
        assert rows(con, "sessions") == [...]

`insert` fills every column a row leaves out with a sensible default (ids numbered per table,
user u1, model m, zero tokens, priced when `cost_usd` is given, file_id 1, position = row number),
so a test names only the values its expectation depends on.
"""
from __future__ import annotations

import functools
import itertools
import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import duckdb
import pytest

from features.build import TEMPLATE_CONTEXT, build_features
from pipeline import sql_models
from pipeline.storage import connect, create_raw_tables

_ids = itertools.count(1)

# Defaults per raw table; a callable is given the row so far (to derive e.g. cost_source).
DEFAULTS: dict[str, dict[str, Any]] = {
    "token_usage": dict(
        request_id=lambda row: f"r{next(_ids)}",
        user_id="u1",
        session_id="s1",
        model="m",
        input_tokens=0,
        output_tokens=0,
        cache_read_tokens=0,
        cache_write_tokens=0,
        cost_usd=None,
        cost_source=lambda row: "unpriced" if row.get("cost_usd") is None else "input",
        tool=None,
    ),
    "invocations": dict(
        invocation_id=lambda row: f"i{next(_ids)}",
        user_id="u1",
        session_id="s1",
        repo=None,
        prompt_fingerprint=lambda row: f"fp{next(_ids)}",  # distinct text unless a test says otherwise
        prompt_simhash=None,
        prompt_length=None,
        lines_accepted=None,
        repo_unreported=False,
        tool_calls=None,
        commit_sha=None,
    ),
    "changes": dict(
        change_id=lambda row: f"c{next(_ids)}",
        repo="repo-a",
        author_id="u1",
        merged_at=None,
        lines_added=0,
        lines_deleted=0,
        ai_session_ids=[],
        commit_shas=[],
        commit_shas_scope=None,
    ),
    "deployments": dict(
        deployment_id=lambda row: f"d{next(_ids)}",
        repo="repo-a",
        status="success",
        change_ids=[],
    ),
    "reviews": dict(
        review_id=lambda row: f"rv{next(_ids)}",
        reviewer_id="u2",
        state="approved",
        ai_session_ids=[],
        comments=None,
    ),
    "people": dict(team=None, org=None),
    "ai_commits": dict(repo="repo-a", committed_at=None, ai_lines_added=None, ai_lines_deleted=None,
                       lines_added=None, lines_deleted=None, tool="cursor"),
}


def feature_variables(**overrides: float | int) -> dict[str, float | int]:
    """The default feature variables (Settings().feature_variables), with `overrides` over them."""
    variables = _default_variables()
    unknown = set(overrides) - set(variables)
    assert not unknown, f"unknown feature variables {unknown}"
    return {**variables, **overrides}


@functools.cache
def _default_variables() -> dict[str, float | int]:
    try:
        from pipeline.settings import Settings

        variables = dict(Settings().feature_variables)
    except (OSError, KeyError, ValueError):  # detectors/default_config.toml missing or mid-edit: not ours
        config = tomllib.loads(resources.files("pipeline").joinpath("default_config.toml").read_text("utf-8"))
        variables = {"link_window_hours": config["links"]["window_hours"],
                     "review_window_hours": config["links"]["review_window_hours"], **config["features"]}
    return variables


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
    """Insert `rows` (dicts of column -> value) into raw table `table`, defaults filling the rest."""
    columns = con.sql(f"SELECT * FROM {table} LIMIT 0").columns
    defaults = DEFAULTS.get(table, {})
    start = con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    values = []
    for number, given in enumerate(rows, start=start + 1):
        unknown = set(given) - set(columns)
        assert not unknown, f"{table} has no columns {unknown}"
        row = dict(given)
        for name, default in defaults.items():
            if name not in row:
                row[name] = default(row) if callable(default) else default
        row.setdefault("file_id", 1)
        row.setdefault("position", number)
        missing = [name for name in columns if name not in row]
        assert not missing, f"{table} row {given} needs {missing}"
        values.append([row[name] for name in columns])
    if values:  # one statement for all rows (executemany runs one per row: slow)
        placeholders = ", ".join([f"({', '.join('?' for _ in columns)})"] * len(values))
        con.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {placeholders}",
                    [value for row in values for value in row])


@functools.cache
def models() -> sql_models.Package:
    """The feature models as the runner loads them (features.build's declared context)."""
    return sql_models.load("features", TEMPLATE_CONTEXT)


def build(con: duckdb.DuckDBPyConnection, upto: str | None = None, **overrides: float | int) -> dict[str, int]:
    """Build the feature tables with the default variables (and `overrides`) in build order: all of
    them, or only table `upto` and the feature tables it reads (the others cost time, not coverage)."""
    tables = None if upto is None else (*models().upstream(upto), upto)
    return build_features(con, feature_variables(**overrides), tables, models=models()).rows


def new_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory database (UTC) with the raw tables created and empty."""
    connection = connect()
    create_raw_tables(connection)
    return connection


def rows(con: duckdb.DuckDBPyConnection, query: str, *columns: str) -> list[dict[str, Any]]:
    """Rows of a table name or a SELECT as dicts, only `columns` when given (all otherwise)."""
    if not query.lstrip().upper().startswith(("SELECT", "FROM", "WITH")):
        query = f"SELECT * FROM {query}"
    relation = con.sql(query)
    names = relation.columns
    out = [dict(zip(names, values)) for values in relation.fetchall()]
    if columns:
        out = [{name: row[name] for name in columns} for row in out]
    return out


def one(con: duckdb.DuckDBPyConnection, query: str, *columns: str) -> dict[str, Any]:
    """The single row of a table name or a SELECT (see `rows`)."""
    result = rows(con, query, *columns)
    assert len(result) == 1, f"expected one row, got {len(result)}: {result}"
    return result[0]


def by(con: duckdb.DuckDBPyConnection, table: str, key: str, *columns: str) -> dict[Any, dict[str, Any]]:
    """Rows of `table` keyed by column `key` (only `columns` when given)."""
    return {row[key]: ({c: row[c] for c in columns} if columns else row) for row in rows(con, table)}


@pytest.fixture(scope="session")
def _shared_connection() -> Iterable[duckdb.DuckDBPyConnection]:
    connection = new_connection()
    yield connection
    connection.close()


@pytest.fixture
def con(_shared_connection) -> Iterable[duckdb.DuckDBPyConnection]:
    """An in-memory database (UTC) with the raw tables created and empty. Each test runs in a
    transaction rolled back at its end (cheaper than a new database), so nothing it inserts or
    builds outlives it."""
    _shared_connection.execute("BEGIN TRANSACTION")
    yield _shared_connection
    _shared_connection.execute("ROLLBACK")
