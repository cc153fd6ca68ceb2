"""DuckDB connections and the raw schema."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import duckdb

from pipeline.ingest.contract import raw_tables_ddl

# The oldest DuckDB whose clients (CLI, Python, JDBC...) must open a published file. A file keeps
# the storage version it was created with, whatever DuckDB later writes to it.
STORAGE_VERSION = "v1.4.0"


DUCKDB_MAGIC = b"DUCK"  # a DuckDB file's header: an 8-byte checksum, then these magic bytes


def is_database_file(path: Path) -> bool:
    """Whether the existing file `path` is a DuckDB database (by its header, without opening it:
    no lock is taken, and a file in another format is never touched)."""
    with open(path, "rb") as f:
        return f.read(12)[8:] == DUCKDB_MAGIC


def read_sql(package: str, name: str) -> str:
    """Text of a packaged SQL file, e.g. read_sql("features", "sessions")."""
    return resources.files(package).joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def write_csv(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> Path:
    """COPY the rows of `query` to a CSV file with a header at `path`."""
    target = str(path).replace("'", "''")
    con.execute(f"COPY ({query}) TO '{target}' (FORMAT csv, HEADER)")
    return path


def connect(
    db_path: Path | str = ":memory:", *, read_only: bool = False, memory_limit: str = ""
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB database with the session settings every stage relies on (UTC), and a memory
    limit past which DuckDB spills to disk ("" keeps DuckDB's default, 80% of RAM). A new file is
    created in STORAGE_VERSION's format, so older DuckDB clients can read it."""
    if not read_only and str(db_path) not in ("", ":memory:") and not Path(db_path).exists():
        create_database(Path(db_path))
    con = duckdb.connect(str(db_path), read_only=read_only)
    con.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        con.execute("SET memory_limit = $limit", {"limit": memory_limit})
    return con


def create_database(db_path: Path, version: str = STORAGE_VERSION) -> None:
    """Create an empty database file in the storage format of DuckDB `version` (e.g. 'v1.4.0')."""
    # set at creation, not as a connect() option: DuckDB refuses a second connection to a file
    # whose configuration differs from the first's, and plain duckdb.connect() opens these files too
    with duckdb.connect() as con:
        path = str(db_path).replace("'", "''")
        version = version.replace("'", "''")
        con.execute(f"ATTACH '{path}' AS created (STORAGE_VERSION '{version}')")
        con.execute("DETACH created")


def convert_to_storage_version(db_path: Path, version: str = STORAGE_VERSION) -> bool:
    """Rewrite the database file at `db_path` in the storage format of DuckDB `version` when it is
    in a newer one (a file created before the format was pinned); True when it was rewritten.
    Only for a file nobody else has open: runs call it on their private copy, so a published
    database moves to the readable format at its next run, verdicts and all."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        current = storage_version(con)
    if current.rstrip("+") == version:
        return False
    converted = db_path.with_name(db_path.name + ".converting")
    converted.unlink(missing_ok=True)
    create_database(converted, version)
    with duckdb.connect() as con:
        con.execute("ATTACH $old AS old (READ_ONLY)", {"old": str(db_path)})
        con.execute("ATTACH $new AS new", {"new": str(converted)})
        con.execute("COPY FROM DATABASE old TO new")
    os.replace(converted, db_path)
    return True


def storage_version(con: duckdb.DuckDBPyConnection) -> str:
    """The storage format of the connection's database file, e.g. 'v1.4.0+'."""
    (tags,), = con.sql("SELECT tags FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    return tags.get("storage_version", "")


def has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether the connection's databases hold a (persistent, not TEMP) table of that name."""
    return bool(con.sql(
        "SELECT 1 FROM duckdb_tables() WHERE table_name = $t AND NOT temporary", params={"t": table}
    ).fetchall())


def create_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables if they do not exist yet (idempotent)."""
    con.execute(raw_tables_ddl())  # the contract's datasets (pipeline/ingest/contract.py)
    con.execute(read_sql("pipeline.ingest", "raw_tables"))  # the loader's bookkeeping
