"""load_inputs: rows in, rows out, with small explicit input files."""
from __future__ import annotations

import datetime
import gzip
import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from pipeline.ingest import checks, staging
from pipeline.ingest import load as load_module
from pipeline.ingest.fingerprint import given_hash_fingerprint, prompt_fingerprint, simhash64
from pipeline.ingest.load import LoadCountError, MissingDatasetError
from pipeline.storage import connect
from tests.conftest import TEST_KEY
from tests.pipeline.conftest import FIXTURES, NOW, TOKEN_HEADER, InputDir, rejected, run_load, table

TS = datetime.datetime


# --- the contract example ----------------------------------------------------------------


def test_contract_example_loads_every_row(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    example = tmp_path / "example"
    shutil.copytree(FIXTURES / "contract-example", example)
    (example / "README.md").write_text("not a dataset")
    (example / "labels").mkdir()
    (example / "labels" / "truth.csv").write_text("user_id\nbob\n")

    summary = run_load(con, example)

    counts = {name: (d.rows_given, d.rows_loaded, d.rows_rejected) for name, d in summary.datasets.items()}
    assert counts == {
        "prices": (0, 0, 0),
        "people": (3, 3, 0),
        "token_usage": (4, 4, 0),
        "invocations": (3, 3, 0),
        "changes": (3, 3, 0),
        "deployments": (2, 2, 0),
        "reviews": (3, 3, 0),
        "ai_commits": (0, 0, 0),
    }
    assert sorted(Path(p).name for p in summary.inputs_seen) == [
        "changes.csv", "deployments.jsonl", "invocations.jsonl", "people.csv", "reviews.jsonl", "token_usage.csv",
    ]
    assert table(con, "token_usage", "request_id, ts, cost_usd, cost_source") == [
        ("r-1", TS(2026, 10, 5, 9, 14, 2), pytest.approx((5120 * 3 + 640 * 15 + 2048 * 0.3) / 1e6), "price_table"),
        ("r-2", TS(2026, 10, 5, 9, 14, 31), pytest.approx((6900 * 3 + 410 * 15 + 5120 * 0.3 + 512 * 3.75) / 1e6), "price_table"),
        ("r-3", TS(2026, 10, 5, 9, 2, 10), 0.0031, "input"),  # 11:02:10+0200
        ("r-4", TS(2026, 10, 5, 10, 5, 44), pytest.approx((2100 * 1 + 95 * 5 + 1500 * 0.1) / 1e6), "price_table"),
    ]
    assert table(con, "invocations", "invocation_id, prompt_fingerprint, prompt_simhash IS NULL, prompt_length") == [
        ("i-1", prompt_fingerprint("Why does the cart total drop the discount when the currency changes?", TEST_KEY), False, 68),
        ("i-2", prompt_fingerprint("Apply the fix and add a regression test", TEST_KEY), False, 39),
        ("i-3", given_hash_fingerprint("4b1d9e", TEST_KEY), True, 1412),
    ]
    assert table(con, "changes", "change_id, merged_at, ai_session_ids, commit_shas") == [
        ("pr-17", TS(2026, 10, 6, 15, 20), ["s-100"], ["9f1c2ab77e0d4c1f8a3b5d6e7f8091a2b3c4d5e6"]),
        ("pr-18", TS(2026, 10, 6, 16, 0), None, None),
        ("pr-19", None, None, None),
    ]
    assert table(con, "deployments", "deployment_id, status, change_ids") == [
        ("d-10", "success", ["pr-17", "pr-18"]),
        ("d-9", "failure", ["pr-17", "pr-18"]),
    ]
    assert table(con, "reviews", "review_id, change_id, reviewer_id, submitted_at, state, ai_session_ids, comments") == [
        ("rv-1", "pr-17", "carol", TS(2026, 10, 6, 11, 2), "changes_requested", [], 3),
        ("rv-2", "pr-17", "carol", TS(2026, 10, 6, 14, 40), "approved", None, 0),
        ("rv-3", "pr-18", "alice", TS(2026, 10, 6, 15, 45), "approved", ["s-100"], 1),
    ]
    assert table(con, "people", "user_id, team") == [("alice", "payments"), ("bob", "search"), ("carol", "payments")]
    assert table(con, "rejected_rows") == []
    assert table(con, "runs") == []  # the caller's table


def test_missing_required_dataset_is_named(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    (inputs.path / "deployments.jsonl").unlink()
    with pytest.raises(MissingDatasetError, match="deployments"):
        run_load(con, inputs.path)
    assert table(con, "loaded_files") == []


def test_optional_datasets_may_be_absent(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    summary = run_load(con, inputs.path)
    assert summary.datasets["people"].files_seen == 0
    assert table(con, "run_datasets", "dataset, files_seen, rows_given, rows_loaded") == [
        ("ai_commits", 0, 0, 0), ("changes", 1, 1, 1), ("deployments", 1, 1, 1), ("invocations", 1, 1, 1),
        ("people", 0, 0, 0), ("prices", 0, 0, 0), ("reviews", 0, 0, 0), ("token_usage", 1, 1, 1),
    ]
    assert table(con, "reviews") == []


# --- formats ---------------------------------------------------------------------------


def test_folder_entry_loads_its_files_in_path_order(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("token_usage/2026-10-06.csv", f"{TOKEN_HEADER}\nr-2,2026-10-06T09:00:00Z,u,s,m,1,1\n")
    inputs.write("token_usage/2026-10-05.csv.gz", f"{TOKEN_HEADER}\nr-1,2026-10-05T09:00:00Z,u,s,m,1,1\n")
    inputs.jsonl("token_usage/late/2026-10-07.ndjson", [
        {"request_id": "r-3", "ts": "2026-10-07T09:00:00Z", "user_id": "u", "session_id": "s", "model": "m",
         "input_tokens": 1, "output_tokens": 1},
    ])
    inputs.write("token_usage/notes.txt", "not a dataset file")

    summary = run_load(con, inputs.path)

    assert summary.datasets["token_usage"].files_seen == 4  # notes.txt is recorded, not skipped
    assert table(con, "token_usage t JOIN loaded_files f USING (file_id)", "t.request_id, f.file_id", "f.file_id") == [
        ("r-1", 1), ("r-2", 2), ("r-3", 3),
    ]
    assert rejected(con) == [("notes.txt", 0, "unknown format: notes.txt (this dataset reads .parquet, .csv, .jsonl, "
                                              ".ndjson, optionally compressed .gz or .zst)")]


def test_a_file_without_a_repo_column_leaves_repositories_unknown(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    # an empty repo is "no repository context"; a file (a source) without the column cannot tell
    inputs.write("invocations/a.csv", "invocation_id,ts,user_id,session_id,repo\n"
                                      "i-1,2026-10-05T09:00:00Z,u,s,a/b\ni-2,2026-10-05T09:01:00Z,u,s,\n")
    inputs.write("invocations/b.csv", "invocation_id,ts,user_id,session_id\ni-3,2026-10-05T09:02:00Z,u,t\n")
    run_load(con, inputs.path)
    assert table(con, "invocations", "invocation_id, repo, repo_unreported") == [
        ("i-1", "a/b", False), ("i-2", None, False), ("i-3", None, True),
    ]


def test_csv_quoting_blank_lines_and_crlf(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write(
        "people.csv",
        'user_id,team,org\r\n"alice","pay, ments","multi\nline"\r\n\r\nbob,"say ""hi""",\r\ncarol,x,y',
    )
    run_load(con, inputs.path)
    assert table(con, "people", "position, user_id, team, org") == [
        (1, "alice", "pay, ments", "multi\nline"),
        (2, "bob", 'say "hi"', None),
        (3, "carol", "x", "y"),
    ]


def test_parquet_with_real_types(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.parquet(con, "token_usage.parquet", """
        SELECT * FROM (VALUES
            ('r-1', TIMESTAMP '2026-10-05 09:00:00', 'u', 's', 'sonnet-4.5', 10::BIGINT, 12.0::DOUBLE, 3::INTEGER, NULL::DOUBLE),
            ('r-2', TIMESTAMP '2026-10-05 09:01:00', 'u', 's', 'sonnet-4.5', 11::BIGINT, 12.5::DOUBLE, 0::INTEGER, 0.5::DOUBLE)
        ) t(request_id, ts, user_id, session_id, model, input_tokens, output_tokens, cache_read_tokens, cost_usd)
    """)
    inputs.parquet(con, "changes.parquet", """
        SELECT 'pr-1' AS change_id, 'a/b' AS repo, TIMESTAMPTZ '2026-10-06 12:00:00+02' AS merged_at,
               ['s-1', 's-2'] AS ai_session_ids, 's-x;s-y' AS commit_shas
    """)
    run_load(con, inputs.path)
    assert table(con, "token_usage", "request_id, ts, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, position") == [
        ("r-1", TS(2026, 10, 5, 9, 0), 10, 12, 3, 0, 1),
    ]
    assert table(con, "rejected_rows", "position, reason, raw::JSON ->> 'request_id'") == [
        (2, "not an integer: output_tokens", "r-2"),
    ]
    assert table(con, "changes", "merged_at, ai_session_ids, commit_shas") == [
        (TS(2026, 10, 6, 10, 0), ["s-1", "s-2"], ["s-x", "s-y"]),
    ]


def test_json_lists_and_strings(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    base = {"repo": "a/b", "deployed_at": "2026-10-06T10:00:00Z", "status": "success"}
    inputs.jsonl("deployments.jsonl", [
        {"deployment_id": "d-1", **base, "change_ids": ["pr-1", "pr-2"]},
        {"deployment_id": "d-2", **base, "change_ids": "pr-3; pr-4"},
        {"deployment_id": "d-3", **base, "change_ids": None},
        {"deployment_id": "d-4", **base, "change_ids": {"not": "a list"}},
        {"deployment_id": "d-5", **base, "change_ids": [], "extra": 1},
    ])
    run_load(con, inputs.path)
    assert table(con, "deployments", "deployment_id, change_ids") == [
        ("d-1", ["pr-1", "pr-2"]), ("d-2", ["pr-3", "pr-4"]), ("d-3", None), ("d-5", []),
    ]
    assert rejected(con) == [("deployments.jsonl", 4, "not a list: change_ids")]


# --- values ----------------------------------------------------------------------------


def test_timestamp_offsets_are_converted_to_utc(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    stamps = ["2026-10-05T09:00:00Z", "2026-10-05T09:00:00+00:00", "2026-10-05T09:00:00+0000",
              "2026-10-05T11:00:00+0200", "2026-10-05 09:00:00", "2026-10-05T04:30:00-04:30", "2026-10-05T09:00:00.250"]
    rows = "".join(f"r-{i},{ts},u,s,m,1,1\n" for i, ts in enumerate(stamps))
    inputs.write("token_usage.csv", f"{TOKEN_HEADER}\n{rows}")
    run_load(con, inputs.path)
    assert table(con, "token_usage", "ts", "request_id") == [(TS(2026, 10, 5, 9, 0),)] * 6 + [
        (TS(2026, 10, 5, 9, 0, 0, 250000),)
    ]


def test_integers_accept_whole_values_only(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("token_usage.csv", f"{TOKEN_HEADER},cache_read_tokens\n"
                 "r-1,2026-10-05T09:00:00Z,u,s,m,12,12.0,\n"
                 "r-2,2026-10-05T09:00:00Z,u,s,m,12.5,1,\n"
                 "r-3,2026-10-05T09:00:00Z,u,s,m,abc,1,\n"
                 "r-4,2026-10-05T09:00:00Z,u,s,m,1,-3,\n"
                 "r-5,2026-10-05T09:00:00Z,u,s,m,1,1, 7 \n"
                 "r-6,2026-10-05T09:00:00Z,u,s,m,1,1,inf\n")
    run_load(con, inputs.path)
    assert table(con, "token_usage", "request_id, input_tokens, output_tokens, cache_read_tokens") == [
        ("r-1", 12, 12, 0), ("r-5", 1, 1, 7),
    ]
    assert rejected(con) == [
        ("token_usage.csv", 2, "not an integer: input_tokens"),
        ("token_usage.csv", 3, "not an integer: input_tokens"),
        ("token_usage.csv", 4, "negative value: output_tokens"),
        ("token_usage.csv", 6, "not an integer: cache_read_tokens"),
    ]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (",2026-10-05T09:00:00Z,u,s,m,1,1,", "missing required field: request_id"),
        ("r-1,2026-10-05T09:00:00Z, ,s,m,1,1,", "missing required field: user_id"),
        ("r-1,,u,s,m,1,1,", "missing required field: ts"),
        ("r-1,yesterday,u,s,m,1,1,", "unparseable timestamp: ts"),
        ("r-1,2026-10-10T13:00:01Z,u,s,m,1,1,", "timestamp in the future: ts"),  # now 12:00 + 1 h skew
        ("r-1,2026-10-05T09:00:00Z,u,s,m,,1,", "missing required field: input_tokens"),
        ("r-1,2026-10-05T09:00:00Z,u,s,m,1,1,abc", "not a number: cost_usd"),
        ("r-1,2026-10-05T09:00:00Z,u,s,m,1,1,-0.5", "negative value: cost_usd"),
        ("r-1,yesterday,,s,m,x,1,", "unparseable timestamp: ts"),  # the first failing check wins
        ("r-1,2026-10-05T09:00:00Z,u,s,m,1,1", "malformed CSV record"),
        ("r-1,2026-10-05T09:00:00Z,u,s,m,1,1,0.1,extra", "malformed CSV record"),
        ('r-1,2026-10-05T09:00:00Z,u,s,m,1,1,0"1', "malformed CSV record"),
    ],
)
def test_token_row_reasons(con: duckdb.DuckDBPyConnection, inputs: InputDir, row: str, reason: str) -> None:
    inputs.write("token_usage.csv", f"{TOKEN_HEADER},cost_usd\nr-0,2026-10-05T09:00:00Z,u,s,m,1,1,\n{row}\n")
    summary = run_load(con, inputs.path)
    assert rejected(con) == [("token_usage.csv", 2, reason)]
    assert table(con, "token_usage", "request_id") == [("r-0",)]
    load = summary.datasets["token_usage"]
    assert (load.rows_given, load.rows_loaded, load.rows_rejected) == (2, 1, 1)


def test_timestamp_within_skew_is_kept(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("token_usage.csv", f"{TOKEN_HEADER}\nr-1,2026-10-10T12:59:59Z,u,s,m,1,1\n")
    run_load(con, inputs.path)
    assert table(con, "token_usage", "request_id") == [("r-1",)]


def test_a_changes_commit_list_scope_is_all_or_heads(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    base = {"repo": "a/b", "author_id": "u", "merged_at": "2026-10-06T10:00:00Z", "commit_shas": ["aaaa"]}
    inputs.jsonl("changes.jsonl", [
        {"change_id": "c-1", **base, "commit_shas_scope": "heads"},
        {"change_id": "c-2", **base},  # not given: NULL, read as `all` (the contract's meaning)
        {"change_id": "c-3", **base, "commit_shas_scope": "some"},
    ])
    run_load(con, inputs.path)
    assert table(con, "changes", "change_id, commit_shas_scope") == [("c-1", "heads"), ("c-2", None)]
    assert rejected(con) == [("changes.jsonl", 3, "unknown commit_shas_scope: some")]


def test_deployment_status_and_json_reasons(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    base = {"repo": "a/b", "deployed_at": "2026-10-06T10:00:00Z"}
    inputs.jsonl("deployments.jsonl", [
        {"deployment_id": "d-1", **base, "status": "rolled_back"},
        {"deployment_id": "d-2", **base, "status": "deployed"},
        '{"deployment_id": "d-3", "repo": ',
        "",
        "   ",
        '["d-4"]',
        {"deployment_id": "d-5", "repo": "", "deployed_at": "2026-10-06T10:00:00Z", "status": "success"},
    ])
    run_load(con, inputs.path)
    assert table(con, "deployments", "deployment_id, status") == [("d-1", "rolled_back")]
    assert rejected(con) == [  # blank lines are not records: d-5 is record 5
        ("deployments.jsonl", 2, "unknown status: deployed"),
        ("deployments.jsonl", 3, "malformed JSON"),
        ("deployments.jsonl", 4, "not a JSON object"),
        ("deployments.jsonl", 5, "missing required field: repo"),
    ]
    assert table(con, "rejected_rows", "raw", "position")[:2] == [
        (json.dumps({"deployment_id": "d-2", **base, "status": "deployed"}),),
        ('{"deployment_id": "d-3", "repo": ',),
    ]


def test_rejected_csv_row_raw_is_a_json_object_of_its_fields(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("changes.csv", "change_id,repo,lines_added,note\npr-1,,5,hello\n")
    run_load(con, inputs.path)
    assert table(con, "rejected_rows", "dataset, source_file, position, raw, reason") == [
        ("changes", str(inputs.path / "changes.csv"), 1,
         '{"change_id":"pr-1","repo":null,"lines_added":"5","note":"hello"}', "missing required field: repo"),
    ]


# --- unreadable files --------------------------------------------------------------------


def test_corrupt_parquet_is_one_rejected_row(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("token_usage/a.parquet", b"PAR1 this is not parquet PAR1")
    inputs.write("token_usage/b.csv", f"{TOKEN_HEADER}\nr-1,2026-10-05T09:00:00Z,u,s,m,1,1\n")
    summary = run_load(con, inputs.path)
    [(name, position, reason)] = rejected(con)
    assert (name, position) == ("a.parquet", 0)
    assert reason.startswith("unreadable file: ")
    load = summary.datasets["token_usage"]
    assert (load.files_loaded, load.rows_given, load.rows_loaded, load.rows_rejected) == (2, 2, 1, 1)


def test_truncated_gzip_keeps_the_rows_before_the_damage(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    rows = "".join(f"r-{i},2026-10-05T09:00:00Z,u,s,m,{i},1\n" for i in range(2000))
    whole = gzip.compress(f"{TOKEN_HEADER}\n{rows}".encode())
    (inputs.path / "token_usage.csv").unlink()
    (inputs.path / "token_usage.csv.gz").write_bytes(whole[: len(whole) // 2])
    summary = run_load(con, inputs.path)
    load = summary.datasets["token_usage"]
    kept = load.rows_loaded
    assert 0 < kept < 2000
    assert table(con, "token_usage", "max(position), count(*)") == [(kept, kept)]
    assert rejected(con) == [("token_usage.csv.gz", kept + 1, "unreadable file: truncated gzip")]
    assert load.rows_given == kept + 1


def test_undecodable_bytes_reject_the_file(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("people.jsonl", b'{"user_id": "a"}\n{"user_id": "\xff"}\n')
    run_load(con, inputs.path)
    assert rejected(con) == [("people.jsonl", 0, "unreadable file: invalid UTF-8")]
    assert table(con, "people") == []


# --- duplicates and idempotence ----------------------------------------------------------


@pytest.mark.parametrize("hashed_ids_max", [staging.HASHED_IDS_MAX, 0])  # 0: DuckDB alone looks for repeats
def test_duplicates_first_copy_stands(
    con: duckdb.DuckDBPyConnection, inputs: InputDir, monkeypatch: pytest.MonkeyPatch, hashed_ids_max: int
) -> None:
    monkeypatch.setattr(staging, "HASHED_IDS_MAX", hashed_ids_max)
    inputs.write("token_usage/1.csv", f"{TOKEN_HEADER}\n"
                 "r-1,2026-10-05T09:00:00Z,u,s,m,1,1\n"
                 "r-2,bad,u,s,m,2,1\n"  # rejected: does not count as loaded
                 "r-1,2026-10-05T09:00:00Z,u,s,m,3,1\n")
    inputs.write("token_usage/2.csv", f"{TOKEN_HEADER}\n"
                 "r-1,2026-10-05T09:00:00Z,u,s,m,4,1\n"
                 "r-2,2026-10-05T09:00:00Z,u,s,m,5,1\n")
    run_load(con, inputs.path)
    assert table(con, "token_usage", "request_id, input_tokens") == [("r-1", 1), ("r-2", 5)]
    assert rejected(con, "token_usage") == [
        ("1.csv", 2, "unparseable timestamp: ts"), ("1.csv", 3, "duplicate"), ("2.csv", 1, "duplicate"),
    ]

    inputs.write("token_usage/3.csv", f"{TOKEN_HEADER}\nr-2,2026-10-05T09:00:00Z,u,s,m,6,1\nr-3,2026-10-05T09:00:00Z,u,s,m,7,1\n")
    summary = run_load(con, inputs.path, "run-2")
    assert table(con, "token_usage", "request_id, input_tokens") == [("r-1", 1), ("r-2", 5), ("r-3", 7)]
    assert table(con, "rejected_rows", "run_id, position, reason", "run_id, position") [-1] == ("run-2", 1, "duplicate")
    load = summary.datasets["token_usage"]
    assert (load.files_seen, load.files_loaded, load.files_skipped, load.rows_given, load.rows_loaded, load.rows_rejected) == (
        3, 1, 2, 2, 1, 1,
    )


def test_second_load_of_the_same_folder_changes_no_count(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    example = tmp_path / "example"
    shutil.copytree(FIXTURES / "contract-example", example)
    (example / "people.csv").write_text("user_id,team\nalice,a\nalice,b\n,c\n")
    run_load(con, example)
    tables = ["token_usage", "invocations", "changes", "deployments", "reviews", "people", "rejected_rows", "loaded_files"]
    before = {name: table(con, name, "count(*)") for name in tables}

    summary = run_load(con, example, "run-2")

    assert {name: table(con, name, "count(*)") for name in tables} == before
    assert before["rejected_rows"] == [(2,)]
    assert all(d.files_loaded == 0 and d.rows_given == 0 for d in summary.datasets.values())
    assert summary.datasets["token_usage"].files_skipped == 1
    assert table(con, "run_datasets GROUP BY run_id", "run_id, sum(files_skipped)::INT") == [("run-1", 0), ("run-2", 6)]


def test_a_copy_of_a_loaded_file_is_skipped(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    text = f"{TOKEN_HEADER}\nr-1,2026-10-05T09:00:00Z,u,s,m,1,1\n"
    inputs.write("token_usage/a.csv", text)
    inputs.write("token_usage/b.csv", text)
    summary = run_load(con, inputs.path)
    load = summary.datasets["token_usage"]
    assert (load.files_seen, load.files_loaded, load.files_skipped, load.rows_rejected) == (2, 1, 1, 0)
    assert table(con, "loaded_files WHERE dataset = 'token_usage'", "path, rows_given, rows_loaded, rows_rejected") == [
        (str(inputs.path / "token_usage" / "a.csv"), 1, 1, 0),
    ]


def test_an_unchanged_file_is_not_hashed_again(
    con: duckdb.DuckDBPyConnection, inputs: InputDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = NOW.timestamp() - 3600
    # "too recent" is 10 minutes here, not 2 s: a slow machine may take 2 s between writing b.csv and hashing it
    monkeypatch.setattr(load_module, "TRUSTED_MTIME_AGE_NS", 600 * 10**9)
    path = inputs.write("token_usage/a.csv", f"{TOKEN_HEADER}\nr-1,2026-10-05T09:00:00Z,u,s,m,1,1\n")
    os.utime(path, (old, old))
    fresh = inputs.write("token_usage/b.csv", f"{TOKEN_HEADER}\nr-2,2026-10-05T09:00:00Z,u,s,m,1,1\n")  # mtime: now
    run_load(con, inputs.path)
    recorded = dict(table(con, "loaded_files WHERE dataset = 'token_usage'", "path, mtime_ns"))
    assert recorded == {str(path): os.stat(path).st_mtime_ns, str(fresh): None}  # too recent to be trusted

    hashed: list[str] = []
    digest = load_module.readers.file_digest
    monkeypatch.setattr(load_module.readers, "file_digest", lambda p: hashed.append(Path(p).name) or digest(p))
    summary = run_load(con, inputs.path, "run-2")
    assert "a.csv" not in hashed and "b.csv" in hashed  # path, size and mtime as loaded: not read
    assert summary.datasets["token_usage"].files_skipped == 2

    # the same size, a new mtime: hashed, and its new content loaded
    path.write_text(f"{TOKEN_HEADER}\nr-3,2026-10-05T09:00:00Z,u,s,m,1,1\n")
    os.utime(path, (old + 1, old + 1))
    hashed.clear()
    summary = run_load(con, inputs.path, "run-3")
    assert "a.csv" in hashed and summary.datasets["token_usage"].files_loaded == 1
    assert table(con, "token_usage", "request_id") == [("r-1",), ("r-2",), ("r-3",)]


def test_a_file_changed_with_its_mtime_put_back_is_taken_as_loaded(
    con: duckdb.DuckDBPyConnection, inputs: InputDir
) -> None:
    """The documented risk of the rule (docs/guarantees.md): same path, size and mtime."""
    old = NOW.timestamp() - 3600
    path = inputs.write("token_usage/a.csv", f"{TOKEN_HEADER}\nr-1,2026-10-05T09:00:00Z,u,s,m,1,1\n")
    os.utime(path, ns=(int(old * 1e9), int(old * 1e9)))
    run_load(con, inputs.path)
    path.write_text(f"{TOKEN_HEADER}\nr-9,2026-10-05T09:00:00Z,u,s,m,1,1\n")
    os.utime(path, ns=(int(old * 1e9), int(old * 1e9)))
    assert run_load(con, inputs.path, "run-2").datasets["token_usage"].files_skipped == 1
    assert table(con, "token_usage", "request_id") == [("r-1",)]


def test_loaded_files_of_an_older_database_are_hashed(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    old = NOW.timestamp() - 3600
    path = inputs.write("token_usage/a.csv", f"{TOKEN_HEADER}\nr-1,2026-10-05T09:00:00Z,u,s,m,1,1\n")
    os.utime(path, (old, old))
    run_load(con, inputs.path)
    con.execute("UPDATE loaded_files SET mtime_ns = NULL")  # as loaded before the column existed
    summary = run_load(con, inputs.path, "run-2")
    assert summary.datasets["token_usage"].files_skipped == 1 and table(con, "token_usage", "request_id") == [("r-1",)]


# --- reviews (optional) ------------------------------------------------------------------

REVIEW_HEADER = "review_id,change_id,reviewer_id,submitted_at,state,ai_session_ids,comments"
REVIEW_COLUMNS = "review_id, change_id, reviewer_id, submitted_at, state, ai_session_ids, comments"


def test_good_reviews_load_with_csv_session_lists(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("reviews.csv", f"{REVIEW_HEADER}\n"
                 "rv-1,pr-0,carol,2026-10-06T11:02:00+02:00,approved,s-1; s-2;;,3\n"
                 "rv-2,pr-9,bob,2026-10-06 12:00:00,commented,,\n"  # pr-9: not loaded (yet), kept all the same
                 "rv-3,pr-0,alice,2026-10-06T12:00:00Z,changes_requested,s-3,0\n")
    summary = run_load(con, inputs.path)
    assert table(con, "reviews", f"{REVIEW_COLUMNS}, position") == [
        ("rv-1", "pr-0", "carol", TS(2026, 10, 6, 9, 2), "approved", ["s-1", "s-2"], 3, 1),
        ("rv-2", "pr-9", "bob", TS(2026, 10, 6, 12, 0), "commented", None, None, 2),
        ("rv-3", "pr-0", "alice", TS(2026, 10, 6, 12, 0), "changes_requested", ["s-3"], 0, 3),
    ]
    load = summary.datasets["reviews"]
    assert (load.files_seen, load.rows_given, load.rows_loaded, load.rows_rejected) == (1, 3, 3, 0)


def test_review_sessions_in_json_are_lists_or_strings(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    base = {"change_id": "pr-0", "reviewer_id": "u0", "submitted_at": "2026-10-06T12:00:00Z", "state": "approved"}
    inputs.jsonl("reviews.jsonl", [
        {"review_id": "rv-1", **base, "ai_session_ids": ["s-1", "s-2"], "comments": 2},
        {"review_id": "rv-2", **base, "ai_session_ids": "s-3; s-4", "comments": "5"},
        {"review_id": "rv-3", **base, "ai_session_ids": [], "comments": 1.0},
        {"review_id": "rv-4", **base, "ai_session_ids": None},
        {"review_id": "rv-5", **base, "ai_session_ids": {"not": "a list"}},
    ])
    summary = run_load(con, inputs.path)
    assert table(con, "reviews", "review_id, ai_session_ids, comments") == [
        ("rv-1", ["s-1", "s-2"], 2), ("rv-2", ["s-3", "s-4"], 5), ("rv-3", [], 1), ("rv-4", None, None),
    ]
    assert rejected(con) == [("reviews.jsonl", 5, "not a list: ai_session_ids")]
    load = summary.datasets["reviews"]
    assert (load.rows_given, load.rows_loaded, load.rows_rejected) == (5, 4, 1)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (",pr-1,u,2026-10-06T12:00:00Z,approved,,", "missing required field: review_id"),
        ("rv-1, ,u,2026-10-06T12:00:00Z,approved,,", "missing required field: change_id"),
        ("rv-1,pr-1,,2026-10-06T12:00:00Z,approved,,", "missing required field: reviewer_id"),
        ("rv-1,pr-1,u,,approved,,", "missing required field: submitted_at"),
        ("rv-1,pr-1,u,last week,approved,,", "unparseable timestamp: submitted_at"),
        ("rv-1,pr-1,u,2026-10-10T13:00:01Z,approved,,", "timestamp in the future: submitted_at"),  # now 12:00 + 1 h
        ("rv-1,pr-1,u,2026-10-06T12:00:00Z,,,", "missing required field: state"),
        ("rv-1,pr-1,u,2026-10-06T12:00:00Z,lgtm,,", "unknown state: lgtm"),
        ("rv-1,pr-1,u,2026-10-06T12:00:00Z,Approved,,", "unknown state: Approved"),  # matched exactly
        ("rv-1,pr-1,u,2026-10-06T12:00:00Z,approved,,2.5", "not an integer: comments"),
        ("rv-1,pr-1,u,2026-10-06T12:00:00Z,approved,,many", "not an integer: comments"),
        ("rv-1,pr-1,u,2026-10-06T12:00:00Z,approved,,-1", "negative value: comments"),
        ("rv-1,pr-1,u,2026-10-06T12:00:00Z,approved,,2147483648", "out of range: comments"),
        ("rv-1,pr-1,,last week,lgtm,,-1", "missing required field: reviewer_id"),  # the first failing check wins
        ("rv-1,pr-1,u,2026-10-06T12:00:00Z,approved,,1,extra", "malformed CSV record"),
        ("rv-0,pr-1,u,2026-10-06T12:00:00Z,approved,,", "duplicate"),
    ],
)
def test_review_row_reasons(con: duckdb.DuckDBPyConnection, inputs: InputDir, row: str, reason: str) -> None:
    inputs.write("reviews.csv", f"{REVIEW_HEADER}\nrv-0,pr-0,u0,2026-10-06T12:00:00Z,approved,,\n{row}\n")
    summary = run_load(con, inputs.path)
    assert rejected(con) == [("reviews.csv", 2, reason)]
    assert table(con, "reviews", "review_id") == [("rv-0",)]
    load = summary.datasets["reviews"]
    assert (load.rows_given, load.rows_loaded, load.rows_rejected) == (2, 1, 1)


def test_review_folder_of_formats_duplicates_and_reruns(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    base = {"change_id": "pr-0", "reviewer_id": "u0", "submitted_at": "2026-10-06T12:00:00Z", "state": "approved"}
    inputs.jsonl("reviews/1.jsonl", [{"review_id": "rv-1", **base, "comments": 1}, {"review_id": "rv-1", **base, "comments": 2}])
    inputs.write("reviews/2.csv.gz", f"{REVIEW_HEADER}\nrv-1,pr-0,u0,2026-10-06T12:00:00Z,approved,,3\n"
                 "rv-2,pr-0,u0,2026-10-06T12:00:00Z,commented,s-1;s-2,4\n")
    summary = run_load(con, inputs.path)
    assert table(con, "reviews", "review_id, comments") == [("rv-1", 1), ("rv-2", 4)]
    assert rejected(con, "reviews") == [("1.jsonl", 2, "duplicate"), ("2.csv.gz", 1, "duplicate")]
    load = summary.datasets["reviews"]
    assert (load.files_seen, load.rows_given, load.rows_loaded, load.rows_rejected) == (2, 4, 2, 2)

    inputs.parquet(con, "reviews/3.parquet", """
        SELECT * FROM (VALUES
            ('rv-2', 'pr-0', 'u0', TIMESTAMPTZ '2026-10-06 14:00:00+02', 'approved', ['s-9'], 5::INTEGER),
            ('rv-3', 'pr-0', 'u0', TIMESTAMPTZ '2026-10-06 14:00:00+02', 'commented', ['s-7', ''], 0::INTEGER)
        ) t(review_id, change_id, reviewer_id, submitted_at, state, ai_session_ids, comments)
    """)
    summary = run_load(con, inputs.path, "run-2")
    assert table(con, "reviews", "review_id, submitted_at, ai_session_ids, comments") == [
        ("rv-1", TS(2026, 10, 6, 12, 0), None, 1),
        ("rv-2", TS(2026, 10, 6, 12, 0), ["s-1", "s-2"], 4),
        ("rv-3", TS(2026, 10, 6, 12, 0), ["s-7"], 0),
    ]
    assert rejected(con, "reviews")[-1] == ("3.parquet", 1, "duplicate")
    load = summary.datasets["reviews"]
    assert (load.files_seen, load.files_loaded, load.files_skipped, load.rows_given, load.rows_loaded, load.rows_rejected) == (
        3, 1, 2, 2, 1, 1,
    )


def test_reviewer_aliases_resolve_like_change_authors(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("reviews.csv", f"{REVIEW_HEADER}\n"
                 "rv-1,pr-0,Carol-GH,2026-10-06T12:00:00Z,approved,,\n"
                 "rv-2,pr-0,carol@corp.example,2026-10-06T12:00:00Z,commented,,\n"
                 "rv-3,pr-0,ghost,2026-10-06T12:00:00Z,commented,,\n")
    run_load(con, inputs.path)
    assert table(con, "unmapped_identities WHERE dataset = 'reviews'", "identity, rows") == [
        ("Carol-GH", 1), ("carol@corp.example", 1), ("ghost", 1),
    ]

    inputs.write("people.csv", "user_id,team,aliases\ncarol,payments,carol@corp.example;carol-gh\n")  # arrives later
    run_load(con, inputs.path, "run-2")
    assert table(con, "reviews", "review_id, reviewer_id") == [("rv-1", "carol"), ("rv-2", "carol"), ("rv-3", "ghost")]
    assert table(con, "unmapped_identities WHERE dataset = 'reviews'", "source, identity, rows") == [("contract", "ghost", 1)]



def test_a_load_without_people_resolves_its_own_rows_under_the_claims_it_found(
    con: duckdb.DuckDBPyConnection, inputs: InputDir
) -> None:
    inputs.write("people.csv", "user_id,team,aliases\ncarol,payments,carol-gh\n")
    inputs.write("reviews/1.csv", f"{REVIEW_HEADER}\nrv-1,pr-0,Carol-GH,2026-10-06T12:00:00Z,approved,,\n")
    run_load(con, inputs.path)
    con.execute("UPDATE reviews SET reviewer_id = 'carol-gh' WHERE review_id = 'rv-1'")  # as if never resolved
    inputs.write("reviews/2.csv", f"{REVIEW_HEADER}\nrv-2,pr-0,CAROL-gh,2026-10-07T12:00:00Z,approved,,\n")
    run_load(con, inputs.path, "run-2")
    # the new rows are resolved; the older ones were the business of the load that brought them
    assert table(con, "reviews", "review_id, reviewer_id") == [("rv-1", "carol-gh"), ("rv-2", "carol")]

    inputs.write("people.csv", "user_id,team,aliases\ncarol,payments,carol-gh\ndave,search,\n")  # new claims: every row again
    run_load(con, inputs.path, "run-3")
    assert table(con, "reviews", "review_id, reviewer_id") == [("rv-1", "carol"), ("rv-2", "carol")]


# --- ai_commits (optional) ---------------------------------------------------------------


def test_ai_commits_load_from_a_plain_csv(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("ai_commits.csv", "commit_sha,repo,user_id,committed_at,ai_lines_added,ai_lines_deleted,lines_added,"
                 "lines_deleted,tool\n"
                 f"{'a' * 40},shop/checkout,alice,2026-10-06T11:02:00+02:00,90,15,120,30,cursor\n"
                 f"{'b' * 40},,,,,,,,\n"  # only the commit: everything else unknown (NULL), not 0
                 f"{'c' * 40},shop/checkout,alice,2026-10-06T12:00:00Z,many,0,10,0,cursor\n"
                 ",shop/checkout,alice,2026-10-06T12:00:00Z,1,0,1,0,cursor\n"
                 f"{'a' * 40},shop/fork,alice,2026-10-06T12:00:00Z,90,15,120,30,cursor\n")  # the same commit in a fork
    summary = run_load(con, inputs.path)
    assert table(con, "ai_commits", "commit_sha, repo, user_id, committed_at, ai_lines_added, ai_lines_deleted, "
                                    "lines_added, lines_deleted, tool, position") == [
        ("a" * 40, "shop/checkout", "alice", TS(2026, 10, 6, 9, 2), 90, 15, 120, 30, "cursor", 1),
        ("b" * 40, None, None, None, None, None, None, None, None, 2),
    ]
    assert rejected(con, "ai_commits") == [
        ("ai_commits.csv", 3, "not an integer: ai_lines_added"),
        ("ai_commits.csv", 4, "missing required field: commit_sha"),
        ("ai_commits.csv", 5, "duplicate"),
    ]
    load = summary.datasets["ai_commits"]
    assert (load.files_seen, load.rows_given, load.rows_loaded, load.rows_rejected) == (1, 5, 2, 3)

# --- cost --------------------------------------------------------------------------------


def test_prices_dataset_overrides_the_default_table(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.write("prices.csv", "model,input_per_mtok,output_per_mtok,cache_read_per_mtok\nsonnet-4.5,1,2,\nhouse-model,10,20,1\n")
    inputs.write("token_usage.csv", f"{TOKEN_HEADER},cache_read_tokens,cache_write_tokens,cost_usd\n"
                 "r-1,2026-10-05T09:00:00Z,u,s,sonnet-4.5,1000000,1000000,1000000,1000000,\n"
                 "r-2,2026-10-05T09:00:00Z,u,s,house-model,1000000,0,1000000,0,\n"
                 "r-3,2026-10-05T09:00:00Z,u,s,haiku-4.5,1000000,0,0,1000000,\n"
                 "r-4,2026-10-05T09:00:00Z,u,s,mystery,1,1,0,0,\n"
                 "r-5,2026-10-05T09:00:00Z,u,s,mystery,1,1,0,0,0.25\n")
    summary = run_load(con, inputs.path)
    assert table(con, "token_usage", "request_id, cost_usd, cost_source") == [
        ("r-1", 3.0, "price_table"),  # NULL cache prices count as 0
        ("r-2", 11.0, "price_table"),
        ("r-3", 1.0 + 1.25, "price_table"),  # default table
        ("r-4", None, "unpriced"),
        ("r-5", 0.25, "input"),
    ]
    assert summary.datasets["token_usage"].rows_unpriced == 1
    assert table(con, "run_datasets", "rows_unpriced", "dataset")[-1] == (1,)
    # a later run counts its own files' unpriced rows, not the earlier runs'
    inputs.write("token_usage/later.csv", f"{TOKEN_HEADER},cache_read_tokens,cache_write_tokens,cost_usd\n"
                 "r-6,2026-10-06T09:00:00Z,u,s,mystery,1,1,0,0,\n"
                 "r-7,2026-10-06T09:00:00Z,u,s,mystery,2,2,0,0,\n")
    assert run_load(con, inputs.path).datasets["token_usage"].rows_unpriced == 2


# --- prompts -----------------------------------------------------------------------------

SECRET = "Tell me the launch code zebra-harmonica"
SECRET_WORD = "zebra-harmonica"


def test_prompt_text_is_fingerprinted_and_never_stored(tmp_path: Path) -> None:
    inputs = InputDir(tmp_path / "in")
    ok = {"ts": "2026-10-05T09:00:00Z", "user_id": "u", "session_id": "s"}
    inputs.jsonl("invocations/main.jsonl", [
        {"invocation_id": "i-1", **ok, "prompt_text": SECRET},
        {"invocation_id": "i-2", **ok, "prompt_text": SECRET + " please", "prompt_length": 7},
        {"invocation_id": "i-3", **ok, "ts": "bad", "prompt_text": SECRET},  # rejected: raw redacted
        '{"invocation_id": "i-4", "prompt_text": "' + SECRET + '", "ts": 2026-10}',  # malformed elsewhere
        '{"invocation_id": "i-5", "prompt_text": "' + SECRET + ' \\q"}',  # malformed inside the text only
        {"invocation_id": "i-1", **ok, "prompt_text": SECRET},  # duplicate: raw redacted
        {"invocation_id": "i-6", **ok, "prompt_text": "", "prompt_hash": "abc"},
        {"invocation_id": "i-7", **ok},
    ])
    inputs.write("invocations/more.csv", f"invocation_id,ts,user_id,session_id,prompt_text\ni-8,bad,u,s,{SECRET}\n"
                 f'i-9,2026-10-05T09:00:00Z,u,s,"{SECRET}\n')
    db = tmp_path / "g.duckdb"
    with connect(db) as con:
        summary = run_load(con, inputs.path)
        assert table(con, "invocations", "invocation_id, prompt_fingerprint, prompt_length") == [
            ("i-1", prompt_fingerprint(SECRET, TEST_KEY), len(SECRET)),
            ("i-2", prompt_fingerprint(SECRET + " please", TEST_KEY), 7),  # the given length wins
            ("i-6", given_hash_fingerprint("abc", TEST_KEY), None),
            ("i-7", None, None),
        ]
        assert rejected(con, "invocations") == [
            ("main.jsonl", 3, "unparseable timestamp: ts"),
            ("main.jsonl", 4, "malformed JSON"),
            ("main.jsonl", 5, "malformed JSON"),
            ("main.jsonl", 6, "duplicate"),
            ("more.csv", 1, "unparseable timestamp: ts"),
            ("more.csv", 2, "malformed CSV record"),
        ]
        raws = [json.loads(raw) for (raw,) in table(con, "rejected_rows", "raw", "source_file, position")]
        fingerprinted = "hmac:" + prompt_fingerprint(SECRET, TEST_KEY)
        assert raws[0] == {"invocation_id": "i-3", **ok, "ts": "bad", "prompt_text": fingerprinted}
        assert sorted(raws[1]) == ["fingerprint", "withheld"]  # cannot be cut out safely: withheld
        assert raws[2] == {"invocation_id": "i-5", "prompt_text": "hmac:" + prompt_fingerprint(SECRET + " \\q", TEST_KEY)}
        assert raws[3] == {"invocation_id": "i-1", **ok, "prompt_text": fingerprinted}
        assert raws[4] == {"invocation_id": "i-8", "ts": "bad", "user_id": "u", "session_id": "s", "prompt_text": fingerprinted}
        assert sorted(raws[5]) == ["fingerprint", "withheld"]
        assert summary.datasets["invocations"].rows_loaded == 4
        leaks = con.sql(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE data_type = 'VARCHAR' AND NOT internal AND schema_name = 'main'"
        ).fetchall()
        assert ("rejected_rows", "raw") in leaks and ("invocations", "prompt_fingerprint") in leaks
        for table_name, column in leaks:
            hits = con.sql(f"SELECT count(*) FROM \"{table_name}\" WHERE contains(\"{column}\", '{SECRET_WORD}')").fetchall()
            assert hits == [(0,)], (table_name, column)
        con.execute("CHECKPOINT")
    assert SECRET_WORD.encode() not in db.read_bytes()


def test_prompt_simhash_groups_near_duplicates(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    ok = {"ts": "2026-10-05T09:00:00Z", "user_id": "u", "session_id": "s"}
    texts = ["Explain this code again (attempt 37)", "Explain this code again (attempt 38)",
             "Why does the nightly deploy fail on the migration step"]
    inputs.jsonl("invocations.jsonl", [{"invocation_id": f"i-{i}", **ok, "prompt_text": t} for i, t in enumerate(texts)])
    run_load(con, inputs.path)
    expected = simhash64(texts, key=TEST_KEY.simhash).to_list()
    assert table(con, "invocations", "prompt_simhash", "invocation_id") == [(v,) for v in expected]
    distances = table(
        con, "invocations a JOIN invocations b ON a.invocation_id < b.invocation_id",
        "a.invocation_id, b.invocation_id, bit_count(xor(a.prompt_simhash, b.prompt_simhash))", "1, 2",
    )
    assert distances[0] == ("i-0", "i-1", 0)  # digits-only tokens are dropped
    assert all(d > 16 for _, _, d in distances[1:])


@pytest.mark.parametrize("hashes", ["python", "colliding", "one"])
def test_repeated_prompt_texts_are_simhashed_once_with_the_same_values(hashes: str) -> None:
    import hashlib

    import pyarrow as pa

    words = ["alpha", "Beta", "gamma42", "123", "KELVIN \u212a", "\u0130stanbul", "x.y(z)", "  ", "dup"]
    texts = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(i % 5 + 1)) for i in range(400)]
    halves = (texts[:150], texts[150:])
    by = {"python": lambda t: hash(t) & (2**64 - 1), "colliding": len, "one": lambda t: 0}[hashes]
    got = staging.distinct_simhashes(
        pa.chunked_array([pa.array(h) for h in halves]),
        pa.chunked_array([pa.array([by(t) for t in h], pa.uint64()) for h in halves]),
        pa.chunked_array([pa.array([hashlib.sha256(t.encode()).hexdigest() for t in h]) for h in halves]),
        TEST_KEY.simhash,
    )
    assert len(set(texts)) < staging.DISTINCT_SHARE_MAX * len(texts)  # the distinct path is taken
    assert pa.chunked_array([got]).combine_chunks().to_pylist() == simhash64(texts, key=TEST_KEY.simhash).to_list()


# --- the count check -----------------------------------------------------------------------


def test_count_mismatch_raises_and_rolls_back(
    con: duckdb.DuckDBPyConnection, inputs: InputDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = load_module.insert_sql

    def lossy(spec: load_module.DatasetSpec) -> str:
        return original(spec) + (" AND __position > 1" if spec.name == "changes" else "")

    monkeypatch.setattr(load_module, "insert_sql", lossy)
    inputs.write("changes.csv", "change_id,repo\npr-1,a\npr-2,a\n")
    with pytest.raises(LoadCountError, match="changes: loaded 1 \\+ rejected 0 != given 2"):
        run_load(con, inputs.path)
    assert table(con, "changes") == []
    assert table(con, "loaded_files", "dataset") == [("invocations",), ("token_usage",)]  # committed before


def test_session_time_zone_must_be_utc(inputs: InputDir) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")
    with pytest.raises(ValueError, match="UTC"):
        run_load(con, inputs.path)


def test_parquet_prompts_are_fingerprinted_and_redacted(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    inputs.parquet(con, "invocations.parquet", f"""
        SELECT * FROM (VALUES
            ('i-1', TIMESTAMPTZ '2026-10-05 11:00:00+02', 'u', 's', '{SECRET}', -1),
            ('i-2', TIMESTAMPTZ '2026-10-05 11:00:00+02', 'u', 's', '{SECRET}', 3)
        ) t(invocation_id, ts, user_id, session_id, prompt_text, tool_calls)
    """)
    run_load(con, inputs.path)
    assert table(con, "invocations", "invocation_id, ts, prompt_fingerprint, prompt_simhash, prompt_length, tool_calls") == [
        ("i-2", TS(2026, 10, 5, 9, 0), prompt_fingerprint(SECRET, TEST_KEY), simhash64([SECRET], key=TEST_KEY.simhash).item(), len(SECRET), 3),
    ]
    assert table(con, "rejected_rows", "position, reason, raw::JSON ->> 'prompt_text'") == [
        (1, "negative value: tool_calls", "hmac:" + prompt_fingerprint(SECRET, TEST_KEY)),
    ]


# --- several Parquet files checked in one scan ------------------------------------------------

TOKEN_PARQUET = """
    SELECT 'r-' || (range + {first}) AS request_id, TIMESTAMPTZ '2026-10-05 09:00:00+00' + INTERVAL (range) SECOND AS ts,
           'u' AS user_id, 's' AS session_id, 'sonnet-4.5' AS model,
           CASE WHEN range % 97 = 5 THEN -1 ELSE range END::BIGINT AS input_tokens,
           CASE WHEN range % 89 = 7 THEN NULL ELSE 1 END::INTEGER AS output_tokens,
           CASE WHEN range % 83 = 3 THEN 2000000000000 ELSE 0 END::UBIGINT AS cache_read_tokens
    FROM range({rows})
"""


def damage(path: Path) -> None:
    """Scramble the data pages of a Parquet file, keeping its footer (its columns and row count read fine)."""
    data = bytearray(path.read_bytes())
    data[200:2000] = bytes((b * 7 + 13) % 256 for b in data[200:2000])
    path.write_bytes(bytes(data))


def test_parquet_files_are_checked_together_and_a_damaged_one_alone(
    con: duckdb.DuckDBPyConnection, inputs: InputDir, tmp_path: Path
) -> None:
    for i, first in enumerate((0, 3000, 6000, 8990)):  # the last file repeats ten ids of the one before
        inputs.parquet(con, f"token_usage/{i}.parquet", TOKEN_PARQUET.format(first=first, rows=3000))
    intact = tmp_path / "intact"
    shutil.copytree(inputs.path, intact)
    damage(inputs.parquet(con, "token_usage/1b.parquet", TOKEN_PARQUET.format(first=90000, rows=5000)))

    summary = run_load(con, inputs.path)

    load = summary.datasets["token_usage"]
    assert (load.files_loaded, load.rows_given, load.rows_loaded + load.rows_rejected) == (5, 12001, 12001)
    [(position, reason)] = con.sql(
        "SELECT position, reason FROM rejected_rows WHERE source_file LIKE '%1b.parquet'").fetchall()
    assert position == 0 and reason.startswith("unreadable file: ")
    without = connect()
    run_load(without, intact)  # the same files without the damaged one
    columns = "request_id, ts, input_tokens, output_tokens, cache_read_tokens, position"
    assert table(con, "token_usage", columns) == table(without, "token_usage", columns)
    reasons = "SELECT reason, count(*) FROM rejected_rows WHERE position > 0 GROUP BY ALL ORDER BY ALL"
    assert con.sql(reasons).fetchall() == without.sql(reasons).fetchall()
    assert ("duplicate", 6) in con.sql(reasons).fetchall() and load.rows_loaded > 11000


def test_checking_files_together_or_one_by_one_gives_the_same_rows(
    con: duckdb.DuckDBPyConnection, inputs: InputDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i, first in enumerate((0, 2990, 6000)):
        inputs.parquet(con, f"token_usage/{i}.parquet", TOKEN_PARQUET.format(first=first, rows=3000))
    inputs.parquet(con, "invocations/a.parquet", f"""
        SELECT 'i-' || range AS invocation_id, TIMESTAMP '2026-10-05 09:00:00' AS ts, 'u' AS user_id, 's' AS session_id,
               CASE range % 4 WHEN 0 THEN NULL WHEN 1 THEN ' ' ELSE '{SECRET} ' || (range % 7) END AS prompt_text
        FROM range(500)
    """)
    inputs.parquet(con, "invocations/b.parquet", f"""
        SELECT 'i-' || (range + 490) AS invocation_id, TIMESTAMP '2026-10-05 09:00:00' AS ts, 'u' AS user_id,
               's' AS session_id, '{SECRET} ' || (range % 5) AS prompt_text
        FROM range(500)
    """)
    # mtime_ns depends on the clock (a file younger than 2 s records none), not on the batching
    tables = {"token_usage": "*", "invocations": "*", "rejected_rows": "*", "loaded_files": "* EXCLUDE (mtime_ns)",
              "run_datasets": "*"}
    run_load(con, inputs.path)
    together = {name: table(con, name, columns) for name, columns in tables.items()}

    monkeypatch.setattr(staging, "BATCH_ROWS", 1)
    alone = connect()
    run_load(alone, inputs.path)
    assert {name: table(alone, name, columns) for name, columns in tables.items()} == together
    assert len(together["rejected_rows"]) > 10 and len(together["invocations"]) == 990


# --- the checks' cheaper forms agree with the plain ones -------------------------------------


def evaluate(field: load_module.Field, source_type: str, values: str) -> list[tuple]:
    """(value, first failing check) of `field` over `values` (a SQL list) typed as `source_type`."""
    parsed, value, field_checks = checks.compile_field(field, "src", source_type, NOW.replace(tzinfo=None))
    reason = "CASE " + " ".join(f"WHEN {c} THEN {why}" for c, why in field_checks) + " END" if field_checks else "NULL"
    columns = ", ".join(f"{expr} AS {alias}" for alias, expr in parsed.items())
    return connect().sql(  # the loader's session (UTC)
        f"SELECT {value}, {reason} FROM (SELECT i, {columns} FROM "
        f"(SELECT i, CAST(v AS {source_type}) AS src FROM (SELECT unnest({values}) AS v, unnest(range(len({values}))) AS i))) ORDER BY i"
    ).fetchall()


@pytest.mark.parametrize("source_type", ["TINYINT", "INTEGER", "BIGINT", "UBIGINT", "HUGEINT"])
def test_integer_columns_check_like_their_text(source_type: str) -> None:
    field = load_module.Field("input_tokens", "integer", required=True, max_value=load_module.COUNT_MAX)
    values = {
        "TINYINT": [-128, -1, 0, 1, 127],
        "INTEGER": [-2147483648, -1, 0, 7, 2147483647],
        "BIGINT": [-(2**63), -1, 0, 999999999999, 10**12, 10**12 + 1, 2**63 - 1],
        "UBIGINT": [0, 10**12, 10**12 + 1, 2**53 + 1, 2**64 - 1],
        "HUGEINT": [-(2**127), -1, 0, 10**12, 10**12 + 1, 10**30],
    }[source_type]
    as_text = "[NULL, " + ", ".join(f"'{v}'" for v in values) + "]"
    typed = evaluate(field, source_type, as_text)
    assert typed == evaluate(field, "VARCHAR", as_text)
    assert ("missing required field: input_tokens" in {r for _, r in typed}) and any(v == 0 for v, _ in typed)


def test_text_blank_test_is_trim() -> None:
    strings = ["", " ", "  ", "\u00a0", "\u3000", "\u2003 \u00a0", "\t", "\n", " \t", "a", " a", "a ", "!", "~", "\x7f",
               "\x00", "é", " é", "\u3000x", "\u00a0\u00a0y", "İ", "🙂", "\u200b"]
    ours = checks.text_of("s", "VARCHAR")
    rows = duckdb.sql(f"SELECT s, {ours}, CASE WHEN trim(s) <> '' THEN s END FROM (SELECT unnest(?) AS s)", params=[strings + [None]]).fetchall()
    assert [r[1] for r in rows] == [r[2] for r in rows]
    assert sum(r[1] is None for r in rows) == 7


def test_timestamptz_to_utc_is_timezone_utc() -> None:
    field = load_module.Field("ts", "timestamp", required=True)
    values = """[NULL, TIMESTAMPTZ '0001-01-01 00:00:00+00', TIMESTAMPTZ '1582-10-10 12:00:00+00', TIMESTAMPTZ '1800-06-01 01:02:03.456789+00',
                 TIMESTAMPTZ '1899-12-31 23:59:59.999999+00', TIMESTAMPTZ '1900-01-01 00:00:00+00', TIMESTAMPTZ '1969-12-31 23:59:59.999999+00',
                 TIMESTAMPTZ '2026-10-05 11:00:00.000001+02', TIMESTAMPTZ '2200-01-01 00:00:00+00', TIMESTAMPTZ '2200-01-01 00:00:00.000001+00',
                 TIMESTAMPTZ '9999-12-31 23:59:59+00', 'infinity'::TIMESTAMPTZ, '-infinity'::TIMESTAMPTZ]"""
    typed = evaluate(field, "TIMESTAMP WITH TIME ZONE", values)
    expected = connect().sql(f"SELECT timezone('UTC', v) FROM (SELECT unnest({values}) AS v, unnest(range(13)) AS i) ORDER BY i").fetchall()
    assert [v for v, _ in typed] == [v for (v,) in expected]


def test_source_files_read_at_once_load_as_they_do_one_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adapters run SOURCE_THREADS files at a time; the files' parts keep their order, so the
    tables (file ids, positions, rejects) are those of reading them one by one."""
    from data.generate import generate_world
    from data.vendor_export import export_vendor_world

    generate_world(tmp_path / "world", users=8, weeks=1, seed=3, style="agentic")
    export_vendor_world(tmp_path / "world", tmp_path / "vendor")
    tables = {}
    for threads in (1, 4):
        monkeypatch.setattr(load_module, "SOURCE_THREADS", threads)
        with connect(tmp_path / f"t{threads}.duckdb") as con:
            run_load(con, tmp_path / "vendor")
            tables[threads] = [
                table(con, "loaded_files", "file_id, path, dataset, rows_given, rows_loaded, rows_rejected"),
                table(con, "token_usage", "request_id, session_id, input_tokens, file_id, position"),
                table(con, "invocations", "invocation_id, prompt_fingerprint, file_id, position"),
                table(con, "rejected_rows", "source_file, position, reason"),
            ]
    assert tables[4] == tables[1]
    assert len(tables[1][0]) > 5 and len(tables[1][1]) > 100
