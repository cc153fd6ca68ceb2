"""The `goodhart` command: exit codes and one-line messages, through a real subprocess."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

GOODHART = [sys.executable, "-m", "pipeline.cli"]


def goodhart(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GOODHART, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_run_without_prefect_exits_0_and_reruns_change_nothing(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    first = goodhart("run", "--input", str(contract_example), "--db", str(db), "--no-prefect", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "15 given, 15 loaded, 0 rejected" in first.stdout
    second = goodhart("run", "--input", str(contract_example), "--db", str(db), "--no-prefect", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "0 given, 0 loaded, 0 rejected" in second.stdout
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT count(*), sum(files_skipped) FROM runs").fetchall() == [(2, 5)]
        assert con.sql("SELECT count(*) FROM token_usage").fetchall() == [(4,)]


def test_missing_required_dataset_is_one_line_and_exit_2(contract_example: Path, tmp_path: Path) -> None:
    input_dir = tmp_path / "input"
    shutil.copytree(contract_example, input_dir)
    (input_dir / "deployments.jsonl").unlink()
    result = goodhart("run", "--input", str(input_dir), "--db", str(tmp_path / "g.duckdb"), "--no-prefect", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "deployments" in result.stderr
    assert not (tmp_path / "g.duckdb").exists()


def test_unusable_arguments_are_one_line_and_exit_2(tmp_path: Path) -> None:
    for args in (
        ("run", "--input", str(tmp_path / "nope"), "--db", "x.duckdb"),
        ("run", "--db", "x.duckdb"),
        ("generate", str(tmp_path / "w"), "--users", "0"),
        ("frobnicate",),
    ):
        result = goodhart(*args, cwd=tmp_path)
        assert result.returncode == 2, args
        assert result.stderr.startswith("goodhart") and result.stderr.strip().count("\n") == 0, result.stderr


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = goodhart("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "generate", "demo", "evaluate", "serve"):
        assert command in result.stdout
