"""The sources/ hook of the loader and identity resolution: aliases, unmapped identities, claims."""
from __future__ import annotations

import duckdb
import pytest

from pipeline.ingest.load import MissingDatasetError
from pipeline.ingest.reconcile import recount_unmapped_identities
from tests.pipeline.conftest import TOKEN_HEADER, InputDir, rejected, run_load, table


def usage(*rows: str) -> str:
    return f"{TOKEN_HEADER}\n" + "".join(f"{row}\n" for row in rows)


def test_aliases_resolve_and_unknown_identities_are_reported(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("token_usage.csv", usage(
        "r-1,2026-10-05T09:00:00Z,Alice@Corp.Example,s-1,m,1,1",  # an alias, in another case
        "r-2,2026-10-05T09:00:00Z,alice,s-1,m,1,1",
        "r-3,2026-10-05T09:00:00Z,dave@corp.example,s-2,m,1,1",
    ))
    inputs.write("changes.csv", "change_id,repo,author_id\npr-1,a/b,alice-gh\npr-2,a/b,ghost\npr-3,a/b,\n")
    inputs.write("people.csv", "user_id,team,aliases\nalice,payments,alice@corp.example;alice-gh;ALICE\n")
    run_load(con, inputs.path)
    assert table(con, "token_usage", "request_id, user_id") == [("r-1", "alice"), ("r-2", "alice"), ("r-3", "dave@corp.example")]
    assert table(con, "changes", "change_id, author_id") == [("pr-1", "alice"), ("pr-2", "ghost"), ("pr-3", None)]
    assert table(con, "people_aliases", "user_id, alias") == [("alice", "alice-gh"), ("alice", "alice@corp.example")]  # ALICE is herself
    assert table(con, "unmapped_identities", "source, dataset, identity, rows") == [
        ("contract", "changes", "ghost", 1),
        ("contract", "invocations", "u0", 1),
        ("contract", "token_usage", "dave@corp.example", 1),
    ]


def test_a_people_file_arriving_later_maps_the_rows_loaded_before(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("token_usage.csv", usage("r-1,2026-10-05T09:00:00Z,dave@corp.example,s-1,m,1,1"))
    run_load(con, inputs.path)
    assert table(con, "unmapped_identities WHERE identity = 'dave@corp.example'", "rows") == [(1,)]

    inputs.write("people/2.csv", "user_id,team,aliases\ndave,search,dave@corp.example\n")
    run_load(con, inputs.path, "run-2")
    assert table(con, "token_usage WHERE request_id = 'r-1'", "user_id") == [("dave",)]
    assert table(con, "unmapped_identities WHERE identity LIKE 'dave%'", "count(*)") == [(0,)]
    before = table(con, "token_usage", "request_id, user_id")
    run_load(con, inputs.path, "run-3")  # nothing new: nothing changes
    assert table(con, "token_usage", "request_id, user_id") == before


def test_a_load_without_people_adds_its_own_rows_to_the_unmapped_counts(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("people.csv", "user_id,team,aliases\nalice,payments,alice@corp.example\n")
    inputs.write("token_usage.csv", usage(
        "r-1,2026-10-05T09:00:00Z,dave@corp.example,s-1,m,1,1",
        "r-2,2026-10-05T09:01:00Z,dave@corp.example,s-1,m,1,1",
        "r-3,2026-10-05T09:02:00Z,alice,s-2,m,1,1",
    ))
    run_load(con, inputs.path)
    inputs.write("token_usage/2.csv", usage(
        "r-4,2026-10-06T09:00:00Z,dave@corp.example,s-3,m,1,1",
        "r-5,2026-10-06T09:00:00Z,erin,s-4,m,1,1",
        "r-6,2026-10-06T09:01:00Z,Alice@Corp.Example,s-5,m,1,1",  # an alias: mapped, not counted
    ))
    run_load(con, inputs.path, "run-2")
    counted = table(con, "unmapped_identities", "source, dataset, identity, rows")
    assert counted == [
        ("contract", "invocations", "u0", 1),
        ("contract", "token_usage", "dave@corp.example", 3),
        ("contract", "token_usage", "erin", 1),
    ]
    recount_unmapped_identities(con)  # every row counted again: the same
    assert table(con, "unmapped_identities", "source, dataset, identity, rows") == counted
    run_load(con, inputs.path, "run-3")  # nothing new: nothing counted twice
    assert table(con, "unmapped_identities", "source, dataset, identity, rows") == counted


def test_recounting_after_rows_are_deleted(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("token_usage.csv", usage(
        "r-1,2026-10-01T09:00:00Z,dave@corp.example,s-1,m,1,1",
        "r-2,2026-10-05T09:00:00Z,dave@corp.example,s-2,m,1,1",
    ))
    run_load(con, inputs.path)
    con.execute("DELETE FROM token_usage WHERE ts < TIMESTAMP '2026-10-03'")  # as a purge does
    recount_unmapped_identities(con)
    assert table(con, "unmapped_identities WHERE dataset = 'token_usage'", "identity, rows") == [("dave@corp.example", 1)]


def test_an_identity_belongs_to_one_person(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("people/1.csv", "user_id,team,aliases\nalice,payments,a@x.example\nbob,search,bob@x.example\n")
    inputs.write("people/2.csv", "user_id,team,aliases\ncarol,search,A@X.example\na@x.example,payments,\nerin,ops,erin@x\n")
    run_load(con, inputs.path)
    assert table(con, "people", "user_id") == [("alice",), ("bob",), ("erin",)]
    assert rejected(con, "people") == [
        ("2.csv", 1, "identity already claimed: A@X.example"),
        ("2.csv", 2, "identity already claimed: a@x.example"),
    ]


def test_sources_fill_required_datasets(con: duckdb.DuckDBPyConnection, tmp_path) -> None:
    inputs = tmp_path / "in"
    (inputs / "sources" / "github_pulls").mkdir(parents=True)
    (inputs / "sources" / "github_pulls" / "pulls.json").write_text("[]")
    (inputs / "token_usage.csv").write_text(usage())
    (inputs / "invocations.csv").write_text("invocation_id\n")
    with pytest.raises(MissingDatasetError, match="deployments"):
        run_load(con, inputs)
    (inputs / "sources" / "github_deployments").mkdir()
    summary = run_load(con, inputs)
    assert (summary.datasets["changes"].files_seen, summary.datasets["deployments"].files_seen) == (1, 0)


def test_a_misspelt_source_folder_is_an_error(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    (inputs.path / "sources" / "claude_code").mkdir(parents=True)
    with pytest.raises(MissingDatasetError, match="claude_code_otel"):
        run_load(con, inputs.path)


def test_an_unreadable_source_file_is_one_reject(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("sources/github_pulls/broken.json", '[{"number": 1}, {"number": ')  # a cut download
    inputs.write("sources/claude_code_otel/bad.jsonl", b'{"resourceLogs": []}\n\xff\n')
    run_load(con, inputs.path)
    assert [(name, position, reason.split(":")[0]) for name, position, reason in rejected(con)] == [
        ("bad.jsonl", 0, "unreadable file"), ("broken.json", 0, "unreadable file"),
    ]
