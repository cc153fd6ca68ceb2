"""git log of the documented --format -> changes (trailers, AI co-authors, numstat, merged commits)."""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from pipeline.ingest.sources.git_log import read_git_log, repo_of
from tests.pipeline.conftest import FIXTURES, InputDir, rejected, run_load, table

LOG = FIXTURES / "sources" / "git_log" / "shop" / "checkout" / "main.txt"  # written by real git (see docs/sources.md)
MERGE = "c01d84823e5b34a934e426a3ce9d9863d9eebf4e"
CLAUDE_COMMIT = "9e8a83efd6cf6d726117cd07d26ac21973d6e779"  # the branch commit the merge brought in


def test_each_record_is_a_change() -> None:
    rows = read_git_log(LOG).rows["changes"]
    assert rows.drop("__raw").to_dicts()[1] == {
        "__position": 2,
        "change_id": f"shop/checkout@{MERGE}",
        "repo": "shop/checkout",
        "author_id": "Alice@Corp.Example",
        "merged_at": "2026-10-06T10:00:00+00:00",
        "lines_added": "3",  # numstat of the merge against its first parent: cart.py 2 + test_cart.py 1
        "lines_deleted": "0",
        "ai_session_ids": ["1f0c7a52-0d55-4c8e-9f0e-5a1d6c1e0a01"],
        "commit_shas": [MERGE, CLAUDE_COMMIT],
        "commit_shas_scope": "heads",  # the merged branch's earlier commits are not in a first-parent log
        "ai_coauthors": ["Claude <noreply@anthropic.com>"],  # the human co-author is not an AI assistant
    }
    squash = rows.drop("__raw").to_dicts()[2]  # one parent: a squashed pull request
    assert (squash["ai_session_ids"], squash["commit_shas"], squash["commit_shas_scope"], squash["lines_added"],
            squash["lines_deleted"]) == (
        ["s-10", "s-9"], ["0123456789abcdef0123456789abcdef01234567"], "all", "3", "2",  # a binary file (-) counts 0
    )
    assert rows["__position"].to_list() == [1, 2, 3]


def test_records_off_the_format_are_rejected() -> None:
    assert read_git_log(LOG).rejects.select("dataset", "position", "reason").rows() == [
        ("changes", 4, "not a record of the documented git log --format"),
        ("changes", 5, "not a commit hash"),
    ]


def test_the_repository_comes_from_the_folder(tmp_path: Path) -> None:
    assert repo_of(tmp_path / "sources" / "git_log" / "shop" / "checkout" / "2026-10.txt") == "shop/checkout"
    assert repo_of(tmp_path / "sources" / "git_log" / "checkout.txt") == "checkout"


def test_loaded_through_the_loader(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    target = inputs.path / "sources" / "git_log" / "shop" / "checkout" / "main.txt"
    target.parent.mkdir(parents=True)
    shutil.copy(LOG, target)
    run_load(con, inputs.path)
    assert table(con, "changes WHERE repo = 'shop/checkout'", "change_id, merged_at IS NOT NULL, lines_added", "change_id") == [
        ("shop/checkout@0123456789abcdef0123456789abcdef01234567", True, 3),
        (f"shop/checkout@{MERGE}", True, 3),
        ("shop/checkout@dd5b3907e2ab57064f0f4a11efec862f8df4f6a7", True, 1),
    ]
    assert table(con, "change_ai_coauthors", "change_id, coauthor") == [(f"shop/checkout@{MERGE}", "Claude <noreply@anthropic.com>")]
    assert rejected(con, "changes") == [
        ("main.txt", 4, "not a record of the documented git log --format"), ("main.txt", 5, "not a commit hash"),
    ]
