"""Rows-in, rows-out helpers for the loader tests: tiny input folders written by the test itself.

    def test_x(con, inputs):
        inputs.write("token_usage.csv", "request_id,ts,...\\nr-1,2026-10-05T09:00:00Z,...\\n")
        summary = run_load(con, inputs.path)
        assert table(con, "token_usage", "request_id") == [("r-1",)]

`inputs` starts with the minimal valid entry for every required dataset, so a test writes only
the dataset it is about (writing `token_usage.csv` replaces the default `token_usage.csv`).
"""
from __future__ import annotations

import datetime
import gzip
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.ingest.load import LoadSummary, load_inputs
from pipeline.storage import connect
from tests.conftest import TEST_KEY

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
DEFAULT_PRICES = REPO / "pipeline" / "ingest" / "prices.csv"
NOW = datetime.datetime(2026, 10, 10, 12, 0, tzinfo=datetime.timezone.utc)
SKEW = datetime.timedelta(hours=1)

TOKEN_HEADER = "request_id,ts,user_id,session_id,model,input_tokens,output_tokens"
MINIMAL = {
    "token_usage.csv": f"{TOKEN_HEADER}\nr-0,2026-10-05T09:00:00Z,u0,s-0,sonnet-4.5,1,1\n",
    "invocations.jsonl": '{"invocation_id": "i-0", "ts": "2026-10-05T09:00:00Z", "user_id": "u0", "session_id": "s-0"}\n',
    "changes.csv": "change_id,repo\npr-0,a/b\n",
    "deployments.jsonl": '{"deployment_id": "d-0", "repo": "a/b", "deployed_at": "2026-10-05T10:00:00Z", "status": "success"}\n',
}


class InputDir:
    """An input folder under tmp_path, prefilled with MINIMAL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        for name, text in MINIMAL.items():
            self.write(name, text)

    def write(self, name: str, content: str | bytes) -> Path:
        """Write one file (any folder below is created); replaces a MINIMAL entry of the same dataset."""
        target = self.path / name
        dataset = name.split("/")[0].split(".")[0]
        for default in MINIMAL:
            if default.split(".")[0] == dataset and (self.path / default).exists() and default != name:
                (self.path / default).unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8") if isinstance(content, str) else content
        target.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        return target

    def jsonl(self, name: str, records: Iterable[Mapping[str, Any] | str]) -> Path:
        """JSON lines from dicts (dumped) or strings (written as they are)."""
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        return self.write(name, "".join(line + "\n" for line in lines))

    def parquet(self, con: duckdb.DuckDBPyConnection, name: str, select_sql: str) -> Path:
        """A Parquet file holding the result of `select_sql` (real types)."""
        target = self.path / name
        for default in MINIMAL:
            if default.split(".")[0] == name.split("/")[0].split(".")[0] and (self.path / default).exists():
                (self.path / default).unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"COPY ({select_sql}) TO '{target}' (FORMAT parquet)")
        return target


@pytest.fixture
def con() -> Iterable[duckdb.DuckDBPyConnection]:
    connection = connect()
    yield connection
    connection.close()


@pytest.fixture
def inputs(tmp_path: Path) -> InputDir:
    return InputDir(tmp_path / "in")


def run_load(
    con: duckdb.DuckDBPyConnection, input_dir: Path, run_id: str = "run-1", *, now: datetime.datetime = NOW,
    source_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> LoadSummary:
    return load_inputs(con, input_dir, run_id, max_future_skew=SKEW, now=now, default_prices=DEFAULT_PRICES,
                       source_options=source_options, key=TEST_KEY)


def table(con: duckdb.DuckDBPyConnection, name: str, columns: str = "*", order: str | None = None) -> list[tuple]:
    """Rows of a table, ordered by `order` (default: the columns selected)."""
    return con.sql(f"SELECT {columns} FROM {name} ORDER BY {order or 'ALL'}").fetchall()


def rejected(con: duckdb.DuckDBPyConnection, dataset: str | None = None) -> list[tuple[str, int, str]]:
    """(source file name, position, reason) of rejected rows, in file and position order."""
    where = f"WHERE dataset = '{dataset}'" if dataset else ""
    rows = con.sql(f"SELECT source_file, position, reason FROM rejected_rows {where} ORDER BY source_file, position").fetchall()
    return [(Path(source).name, position, reason) for source, position, reason in rows]
