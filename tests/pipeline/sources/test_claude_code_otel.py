"""Claude Code OpenTelemetry logs (Collector file exporter, OTLP JSON lines) -> token_usage, invocations."""
from __future__ import annotations

import gzip
import shutil

import duckdb

from pipeline.fingerprint import prompt_fingerprint
from pipeline.sources.claude_code_otel import read_claude_code_otel
from tests.pipeline.conftest import FIXTURES, InputDir, rejected, run_load, table

LOGS = FIXTURES / "sources" / "claude_code_otel" / "logs.jsonl"
ALICE_SESSION = "1f0c7a52-0d55-4c8e-9f0e-5a1d6c1e0a01"
BOB = "0b7c2e4a-aaaa-4bbb-8ccc-000000000002"  # no user.email: the account uuid names him


def test_api_requests_become_token_usage_rows() -> None:
    rows = read_claude_code_otel(LOGS).rows["token_usage"]
    assert rows.select(
        "__position", "ts", "user_id", "model", "input_tokens", "output_tokens", "cache_read_tokens",
        "cache_write_tokens", "cost_usd", "tool",
    ).rows() == [
        (2, "2026-10-05T09:00:05.000Z", "alice@corp.example", "claude-sonnet-4-5", "1200", "300", "5000", "200", "0.0123", "claude-code"),
        (6, "2026-10-06T09:00:00.000000Z", BOB, "claude-haiku-4-5", "900", "80", "0", "0", "0.0013", "claude-code"),  # intValue / doubleValue, timeUnixNano
        (7, "2026-10-05T10:00:01Z", BOB, "claude-haiku-4-5", "abc", "1", None, None, None, "claude-code"),
    ]
    ids = rows["request_id"].to_list()
    assert ids[1] == "req_011CU"  # given
    assert ids[0].startswith("cc-") and ids[2].startswith("cc-") and ids[0] != ids[2]  # derived from the record
    assert read_claude_code_otel(LOGS).rows["token_usage"]["request_id"].to_list() == ids  # stable


def test_prompts_become_invocations_and_a_commit_joins_its_prompt() -> None:
    rows = read_claude_code_otel(LOGS).rows["invocations"]
    assert rows.select(
        "__position", "invocation_id", "session_id", "repo", "prompt_text", "prompt_length", "tool_calls", "commit_sha"
    ).rows() == [
        (1, "p-0001", ALICE_SESSION, "shop/checkout", "Fix the flaky checkout test", "27", "1",
         "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"),  # from tool_parameters.git_commit_id, lowercased
        (10, "p-0002", ALICE_SESSION, "shop/checkout", None, "12", "1", None),
        # a commit whose prompt (p-0003) is not in the file: an invocations row of its own
        (11, rows["invocation_id"][2], ALICE_SESSION, "shop/checkout", None, None, None, "c0ffee0000000000000000000000000000000001"),
    ]
    assert "Fix the flaky" not in "".join(rows["__raw"].to_list())  # raw text carries the fingerprint only
    assert "sha256:" + prompt_fingerprint("Fix the flaky checkout test") in rows["__raw"][0]


def test_records_that_are_no_claude_code_event_are_rejected_with_a_reason() -> None:
    assert read_claude_code_otel(LOGS).rejects.select("dataset", "position", "reason").rows() == [
        ("token_usage", 5, "malformed JSON"),
        ("token_usage", 8, "not a Claude Code event: gemini_cli.api_request"),
        ("token_usage", 9, "not an OTLP logs export"),
    ]


def test_loaded_through_the_loader(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    target = inputs.path / "sources" / "claude_code_otel" / "2026-10-05" / "logs.jsonl"
    target.parent.mkdir(parents=True)
    shutil.copy(LOGS, target)
    summary = run_load(con, inputs.path)

    assert table(con, "token_usage WHERE tool = 'claude-code'", "user_id, input_tokens, cost_usd, cost_source") == [
        (BOB, 900, 0.0013, "input"),
        ("alice@corp.example", 1200, 0.0123, "input"),
    ]
    assert table(con, "invocations WHERE session_id <> 's-0'", "invocation_id, prompt_fingerprint, prompt_length, commit_sha", "ts") == [
        ("p-0001", prompt_fingerprint("Fix the flaky checkout test"), 27, "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"),
        ("p-0002", None, 12, None),
        (table(con, "invocations WHERE position = 11", "invocation_id")[0][0], None, None, "c0ffee0000000000000000000000000000000001"),
    ]
    assert rejected(con) == [  # the adapter's rejects and the loader's, with the vendor file's positions
        ("logs.jsonl", 5, "malformed JSON"),
        ("logs.jsonl", 7, "not an integer: input_tokens"),
        ("logs.jsonl", 8, "not a Claude Code event: gemini_cli.api_request"),
        ("logs.jsonl", 9, "not an OTLP logs export"),
    ]
    tokens = summary.datasets["token_usage"]
    assert (tokens.files_seen, tokens.files_loaded, tokens.rows_given, tokens.rows_loaded, tokens.rows_rejected) == (2, 2, 7, 3, 4)
    assert table(con, "loaded_files WHERE source = 'claude_code_otel'", "dataset, rows_given, rows_loaded, rows_rejected") == [
        ("invocations", 3, 3, 0), ("token_usage", 6, 2, 4),
    ]
    leaks = con.sql("SELECT table_name, column_name FROM duckdb_columns() WHERE data_type = 'VARCHAR' AND NOT internal").fetchall()
    for table_name, column in leaks:
        assert con.sql(f'SELECT count(*) FROM "{table_name}" WHERE contains("{column}", \'flaky\')').fetchall() == [(0,)]


def test_a_rerun_adds_nothing_and_a_new_file_only_its_rows(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    folder = inputs.path / "sources" / "claude_code_otel"
    folder.mkdir(parents=True)
    shutil.copy(LOGS, folder / "a.jsonl")
    run_load(con, inputs.path)
    counts = table(con, "(SELECT (SELECT count(*) FROM token_usage), (SELECT count(*) FROM invocations), (SELECT count(*) FROM rejected_rows))")

    summary = run_load(con, inputs.path, "run-2")
    assert table(con, "(SELECT (SELECT count(*) FROM token_usage), (SELECT count(*) FROM invocations), (SELECT count(*) FROM rejected_rows))") == counts
    assert summary.datasets["token_usage"].files_skipped == 2  # the contract file and the source file

    # the collector rotated the file: the same records again plus one new request
    extra = LOGS.read_text().splitlines()[0].replace('"1200"', '"1201"').replace("09:00:05.000Z", "09:00:06.000Z")
    (folder / "b.jsonl").write_text(LOGS.read_text() + extra + "\n")
    run_load(con, inputs.path, "run-3")
    assert table(con, "token_usage WHERE input_tokens = 1201", "count(*)") == [(1,)]
    assert table(con, "rejected_rows WHERE run_id = 'run-3' GROUP BY reason", "reason, count(*)", "1") == [
        ("duplicate", 6), ("malformed JSON", 1), ("not a Claude Code event: gemini_cli.api_request", 1),
        ("not an OTLP logs export", 1), ("not an integer: input_tokens", 1),
    ]


def test_a_truncated_gzip_keeps_the_lines_before_the_damage(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    data = gzip.compress(LOGS.read_bytes())
    target = inputs.path / "sources" / "claude_code_otel" / "logs.jsonl.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(data[: len(data) - 40])
    run_load(con, inputs.path)
    assert rejected(con)[-1][2] == "unreadable file: truncated gzip"
