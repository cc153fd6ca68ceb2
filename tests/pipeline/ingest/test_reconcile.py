"""pipeline/ingest/reconcile.py: repositories of source rows resolved on evidence (rows in, rows out).
Aliases and deployment changes are tested through whole loads in tests/pipeline/ingest/sources."""
from __future__ import annotations

import duckdb
import pytest

from pipeline.ingest.reconcile import reconcile
from pipeline.storage import connect, create_raw_tables
from tests.pipeline.conftest import InputDir, run_load


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = connect()
    create_raw_tables(con)
    con.execute("""INSERT INTO loaded_files (file_id, run_id, dataset, path, sha256, bytes, rows_given, rows_loaded,
                   rows_rejected, loaded_at, source) VALUES
                   (1, 'r', 'invocations', 'sources/claude_code_otel/a.jsonl', 'x', 1, 1, 1, 0, now(), 'claude_code_otel'),
                   (2, 'r', 'invocations', 'invocations.csv', 'y', 1, 1, 1, 0, now(), 'contract'),
                   (3, 'r', 'changes', 'sources/github_pulls/p.json', 'z', 1, 1, 1, 0, now(), 'github_pulls'),
                   (4, 'r', 'invocations', 'invocations/old.csv', 'w', 1, 1, 1, 0, now(), NULL)""")
    # file 4: loaded before loaded_files had a source column (a contract file)
    return con


def _prompt(con: duckdb.DuckDBPyConnection, invocation_id: str, session_id: str, repo: str | None,
            commit_sha: str | None = None, file_id: int = 1) -> None:
    con.execute("INSERT INTO invocations (invocation_id, ts, user_id, session_id, repo, commit_sha, file_id, position) "
                "VALUES (?, TIMESTAMP '2026-10-05 09:00', 'u1', ?, ?, ?, ?, 1)",
                [invocation_id, session_id, repo, commit_sha, file_id])


def _change(con: duckdb.DuckDBPyConnection, change_id: str, repo: str, commit_shas: list[str]) -> None:
    con.execute("INSERT INTO changes (change_id, repo, author_id, merged_at, commit_shas, file_id, position) "
                "VALUES (?, ?, 'u1', TIMESTAMP '2026-10-05 12:00', ?, 3, 1)", [change_id, repo, commit_shas])


def _repos(con: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    return dict(con.sql("SELECT invocation_id, repo FROM invocations").fetchall())


def test_a_bare_folder_name_becomes_the_one_repository_that_ends_in_it(con: duckdb.DuckDBPyConnection) -> None:
    _prompt(con, "billing", "s1", "billing")
    _prompt(con, "Billing", "s1", "Billing")
    _prompt(con, "ambiguous", "s2", "web")  # shop/web and blog/web: no guess
    _prompt(con, "no-such", "s3", "scratch")
    _prompt(con, "contract", "s4", "billing", file_id=2)  # a contract file's repo is as given
    _prompt(con, "old-contract", "s5", "billing", file_id=4)
    _change(con, "shop/billing#1", "shop/billing", [])
    _change(con, "shop/web#1", "shop/web", [])
    _change(con, "blog/web#1", "blog/web", [])
    _change(con, "shop/my_billing#1", "shop/my_billing", [])  # '_' is not a wildcard
    reconcile(con)
    assert _repos(con) == {"billing": "shop/billing", "Billing": "shop/billing", "ambiguous": "web",
                           "no-such": "scratch", "contract": "billing", "old-contract": "billing"}
    assert con.sql("SELECT name, repo FROM resolved_repositories").fetchall() == [("billing", "shop/billing")]
    reconcile(con)  # a rerun changes nothing
    assert con.sql("SELECT count(*) FROM resolved_repositories").fetchall() == [(1,)]


def test_a_session_without_repository_takes_the_one_its_merged_commits_went_to(con: duckdb.DuckDBPyConnection) -> None:
    _prompt(con, "made-commit", "s1", None, commit_sha="ABC1234")
    _prompt(con, "same-session", "s1", None)
    _prompt(con, "unmerged", "s2", None, commit_sha="fff0000")
    _prompt(con, "contract", "s3", None, commit_sha="abc1234", file_id=2)
    _prompt(con, "old-contract", "s5", None, commit_sha="abc1234", file_id=4)
    # a session that names a repository elsewhere: its repo-less prompts were said to have none
    _prompt(con, "mixed-commit", "s4", None, commit_sha="abc1234")
    _prompt(con, "mixed-named", "s4", "shop/other")
    _change(con, "shop/billing#7", "shop/billing", ["abc1234", "9999999"])
    reconcile(con)
    assert _repos(con) == {"made-commit": "shop/billing", "same-session": "shop/billing", "unmerged": None,
                           "contract": None, "old-contract": None, "mixed-commit": None, "mixed-named": "shop/other"}


def test_a_loaded_contract_file_keeps_its_repositories_as_given(inputs: InputDir) -> None:
    # through the loader, which records contract files as source 'contract'
    inputs.jsonl("invocations.jsonl", [
        {"invocation_id": "bare", "ts": "2026-10-05T09:00:00Z", "user_id": "u0", "session_id": "s-1", "repo": "billing"},
        {"invocation_id": "none", "ts": "2026-10-05T09:01:00Z", "user_id": "u0", "session_id": "s-2",
         "commit_sha": "abc1234"},
    ])
    inputs.write("changes.csv", "change_id,repo,commit_shas\npr-1,shop/billing,[abc1234]\n")
    with connect() as loaded:
        run_load(loaded, inputs.path)
        assert _repos(loaded) == {"bare": "billing", "none": None}
        assert loaded.sql("SELECT count(*) FROM resolved_repositories").fetchall() == [(0,)]
