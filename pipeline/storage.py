"""DuckDB connections and the raw schema."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import duckdb


def read_sql(package: str, name: str) -> str:
    """Text of a packaged SQL file, e.g. read_sql("features", "sessions")."""
    return resources.files(package).joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def connect(
    db_path: Path | str = ":memory:", *, read_only: bool = False, memory_limit: str = ""
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database with the session settings every stage relies on (UTC), and a memory
    limit past which DuckDB spills to disk ("" keeps DuckDB's default, 80% of RAM)."""
    con = duckdb.connect(str(db_path), read_only=read_only)
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        con.execute("SET memory_limit = $limit", {"limit": memory_limit})
    return con


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables if they do not exist yet (idempotent)."""
    con.execute(read_sql("pipeline", "raw_tables"))
