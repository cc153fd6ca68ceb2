"""Shared helpers for the reliability and security tests: a small generated world, a fast
configuration (rules only: the models' first fit compiles numba code for seconds per process,
and these tests are about what survives crashes and bad input, not about detection quality),
the `goodhart` command as a subprocess, and table counts to compare databases.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from pipeline.settings import Settings

REPO = Path(__file__).resolve().parents[2]
GOODHART = [sys.executable, "-m", "pipeline.cli"]
CANARY = "canary-5d1e77-never-store-me"

FAST_CONFIG = """\
# rules only: the same stages and tables, without the models' numba compile time
[detectors.levels.user_week]
detectors = ["rules"]
[detectors.levels.session]
detectors = ["rules"]
"""

# what a completed run leaves, counted to compare two databases
COUNTED = (
    "token_usage", "invocations", "changes", "deployments", "people", "rejected_rows", "loaded_files",
    "sessions", "session_features", "user_week_features", "user_week_scores", "session_scores", "flags",
)


def goodhart(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300,
             ) -> subprocess.CompletedProcess[str]:
    """Run the `goodhart` command to completion."""
    return subprocess.run([*GOODHART, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env={**os.environ, **(env or {})})


def start_goodhart(*args: str, cwd: Path, env: dict[str, str] | None = None,
                   command: list[str] = GOODHART) -> subprocess.Popen[str]:
    """Start the `goodhart` command (or `command`, e.g. the kill_at launcher) without waiting for it."""
    return subprocess.Popen([*command, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env={**os.environ, **(env or {}), "PYTHONPATH": _pythonpath()})


def _pythonpath() -> str:
    """The repository first on the path, so that `python -m tests...` finds the tests from any cwd."""
    return os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))


def counts(db: Path, tables: tuple[str, ...] = COUNTED) -> dict[str, int]:
    """Rows per table (absent tables are left out), read through a fresh read-only connection."""
    with duckdb.connect(str(db), read_only=True) as con:
        present = {name for (name,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
        return {t: con.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables if t in present}


def completed_runs(db: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql("SELECT run_id, status FROM runs ORDER BY started_at").fetchall()


def copy_world(world: Path, target: Path) -> Path:
    """A copy of a generated world without its labels (they are not input)."""
    shutil.copytree(world, target, ignore=shutil.ignore_patterns("labels"))
    return target


@pytest.fixture(scope="session")
def fast_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "fast.toml"
    path.write_text(FAST_CONFIG)
    return path


@pytest.fixture(scope="session")
def fast_settings(fast_config: Path) -> Settings:
    return Settings.from_file(fast_config)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 people over 2 weeks (~20k rows, one file per day per usage dataset); read-only: copy it to change it."""
    from data.generate import generate_world

    out = tmp_path_factory.mktemp("world") / "world"
    generate_world(out, users=30, weeks=2, seed=11)
    return out
