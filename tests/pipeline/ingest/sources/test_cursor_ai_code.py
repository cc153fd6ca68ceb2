"""Cursor AI Code Tracking API commits (JSON pages or commits.csv) -> ai_commits: AI lines per commit, by whom, where."""
from __future__ import annotations

import shutil

import duckdb

from pipeline.ingest.sources.cursor_ai_code import read_cursor_ai_commits
from tests.pipeline.conftest import FIXTURES, InputDir, rejected, run_load, table

COMMITS = FIXTURES / "sources" / "cursor_ai_code"
PAGES = COMMITS / "commits-2026-10-06.json"  # a page as the API sends it, then a pretty-printed one
LINES = COMMITS / "commits-2026-10-07.jsonl"  # one commit per line, a malformed line, an error response
CSV = COMMITS / "commits-2026-10-08.csv"  # GET /analytics/ai-code/commits.csv
SHA_1 = "9e8a83efd6cf6d726117cd07d26ac21973d6e779"


def test_commits_of_api_pages_become_ai_commits() -> None:
    out = read_cursor_ai_commits(PAGES)
    assert out.rows["ai_commits"].drop("__raw").rows() == [
        # AI lines = TAB + COMPOSER (50 + 40 added, 10 + 5 deleted); the hash lowercased
        (1, SHA_1, "shop/checkout", "alice@corp.example", "2026-10-05T14:12:03.000Z", "90", "15", "120", "30", "cursor"),
        # no repository, branch nor commit time known: NULL, not guessed (createdAt is when Cursor ingested it)
        (2, "5d1a0b7c9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b", None, "bob@corp.example", None, "12", "0", "12", "0", "cursor"),
        (3, "cccc000000000000000000000000000000000003", "shop/search", "user_9q1z5wCarol", "2026-10-05T17:30:00.000Z",
         "8", "2", "8", "2", "cursor"),  # no email (privacy mode): the encoded user id
        (5, "dddd000000000000000000000000000000000004", "shop/checkout", "alice@corp.example", "2026-10-06T09:00:00.000Z",
         None, "4", "20", "4", "cursor"),  # composerLinesAdded not given: the AI lines added are unknown
        (6, "eeee000000000000000000000000000000000005", "shop/checkout", "alice@corp.example", "2026-10-06T10:00:00.000Z",
         "many", "0", "10", "0", "cursor"),  # not a number: for the loader to reject
        (7, None, "shop/checkout", "bob@corp.example", "2026-10-06T11:00:00.000Z", "1", "1", "1", "1", "cursor"),
        (8, SHA_1, "shop/checkout", "alice@corp.example", "2026-10-05T14:12:03.000Z", "90", "15", "120", "30", "cursor"),
    ]
    assert out.rejects.select("dataset", "position", "reason").rows() == [("ai_commits", 4, "not a commit hash")]


def test_malformed_lines_and_error_responses_are_rejected() -> None:
    out = read_cursor_ai_commits(LINES)
    assert out.rows["ai_commits"].select("__position", "commit_sha", "ai_lines_added").rows() == [
        (1, "ffff000000000000000000000000000000000006", "25"),
    ]
    assert out.rejects.select("position", "reason").rows() == [(2, "malformed JSON"), (3, "not a Cursor AI commit record")]


def test_the_csv_export_reads_the_same_fields() -> None:
    out = read_cursor_ai_commits(CSV)
    assert out.rows["ai_commits"].drop("__raw").rows() == [
        (1, "7a7a000000000000000000000000000000000007", "shop/checkout", "alice@corp.example", "2026-10-08T13:45:21.000Z",
         "55", "8", "85", "15", "cursor"),
        (3, "9c9c000000000000000000000000000000000009", "shop/search", "bob@corp.example", "2026-10-08T15:00:00.000Z",
         "6", "0", "6", "0", "cursor"),
    ]
    assert out.rejects.select("position", "reason").rows() == [(2, "malformed CSV record")]  # a bare quote in a field


def test_loaded_through_the_loader(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    folder = inputs.path / "sources" / "cursor_ai_code"
    folder.mkdir(parents=True)
    for export in (PAGES, LINES, CSV):
        shutil.copy(export, folder / export.name)
    inputs.write("people.csv", "user_id,team,aliases\nalice,payments,alice@corp.example\ncarol,search,user_9q1z5wCarol\n")
    summary = run_load(con, inputs.path)

    assert table(con, "ai_commits", "left(commit_sha, 4), repo, user_id, committed_at::VARCHAR, ai_lines_added, "
                                    "ai_lines_deleted, lines_added, lines_deleted, tool") == [
        ("5d1a", None, "bob@corp.example", None, 12, 0, 12, 0, "cursor"),
        ("7a7a", "shop/checkout", "alice", "2026-10-08 13:45:21", 55, 8, 85, 15, "cursor"),
        ("9c9c", "shop/search", "bob@corp.example", "2026-10-08 15:00:00", 6, 0, 6, 0, "cursor"),
        ("9e8a", "shop/checkout", "alice", "2026-10-05 14:12:03", 90, 15, 120, 30, "cursor"),  # aliases resolved
        ("cccc", "shop/search", "carol", "2026-10-05 17:30:00", 8, 2, 8, 2, "cursor"),
        ("dddd", "shop/checkout", "alice", "2026-10-06 09:00:00", None, 4, 20, 4, "cursor"),
        ("ffff", "shop/search", "carol@corp.example", "2026-10-07 09:15:00", 25, 8, 30, 10, "cursor"),
    ]
    assert rejected(con, "ai_commits") == [
        ("commits-2026-10-06.json", 4, "not a commit hash"),
        ("commits-2026-10-06.json", 6, "not an integer: ai_lines_added"),
        ("commits-2026-10-06.json", 7, "missing required field: commit_sha"),
        ("commits-2026-10-06.json", 8, "duplicate"),  # the same commit again: counted once
        ("commits-2026-10-07.jsonl", 2, "malformed JSON"),
        ("commits-2026-10-07.jsonl", 3, "not a Cursor AI commit record"),
        ("commits-2026-10-08.csv", 2, "malformed CSV record"),
    ]
    load = summary.datasets["ai_commits"]
    assert (load.files_seen, load.rows_given, load.rows_loaded, load.rows_rejected) == (3, 14, 7, 7)
    assert table(con, "unmapped_identities WHERE dataset = 'ai_commits'", "source, identity, rows") == [
        ("cursor_ai_code", "bob@corp.example", 2), ("cursor_ai_code", "carol@corp.example", 1),
    ]
    run_load(con, inputs.path, "run-2")  # idempotent: nothing new
    assert table(con, "ai_commits", "count(*)") == [(7,)]
