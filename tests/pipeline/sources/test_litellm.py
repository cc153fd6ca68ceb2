"""LiteLLM spend logs (CSV or JSON export of LiteLLM_SpendLogs) -> token_usage, and people teams."""
from __future__ import annotations

import shutil

import duckdb

from pipeline.sources.litellm import read_litellm_spend_logs
from tests.pipeline.conftest import FIXTURES, InputDir, rejected, run_load, table

SPEND = FIXTURES / "sources" / "litellm"


def test_csv_rows_become_token_usage() -> None:
    out = read_litellm_spend_logs(SPEND / "spend_logs.csv")
    assert out.rows["token_usage"].drop("__raw").rows() == [
        # prompt_tokens 7200 hold 5000 cache reads and 200 cache writes: 2000 plain input tokens
        (1, "chatcmpl-001", "2026-10-05 09:14:02.123+00", "alice@corp.example", "sess-a", "claude-sonnet-4-5-20250929",
         "2000", "410", "5000", "200", "0.0213", "litellm"),
        # no user: metadata.user_api_key_user_id; no session: one per user and day
        (2, "chatcmpl-002", "2026-10-05 11:02:10+02", "bob@corp.example", "litellm:bob@corp.example:2026-10-05",
         "claude-haiku-4-5", "1800", "220", None, None, "0.0031", "litellm"),
        (3, "chatcmpl-003", "2026-10-05 12:00:00+00", "carol@corp.example", "litellm:carol@corp.example:2026-10-05",
         "claude-haiku-4-5", "abc", "10", None, None, "0.0010", "litellm"),
        (4, "chatcmpl-004", "2026-10-06 08:00:00+00", "alice@corp.example", "sess-b", "claude-haiku-4-5",
         None, None, None, None, "0", "litellm"),
    ]
    assert out.rows["people"].drop("__raw").rows() == [
        (1, "alice@corp.example", "payments-2"),  # the team alias of her newest row
        (3, "carol@corp.example", "team-uuid-2"),  # no alias: the team id
    ]
    assert out.rejects.select("position", "reason").rows() == [(5, "malformed CSV record")]
    assert "secret prompt text" not in str(out.rejects["raw"].to_list()) + "".join(out.rows["token_usage"]["__raw"])


def test_json_export_reads_the_same_columns() -> None:
    out = read_litellm_spend_logs(SPEND / "spend_logs.json")
    assert out.rows["token_usage"].select("request_id", "input_tokens", "cache_read_tokens", "cost_usd").rows() == [
        ("chatcmpl-001-api", "2000", "5000", "0.0213"), ("chatcmpl-002-api", "1800", None, "0.0031"),
    ]
    assert out.rejects.select("position", "reason").rows() == [(3, "not a JSON object")]


def test_loaded_through_the_loader_a_people_file_keeps_the_last_word(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    target = inputs.path / "sources" / "litellm" / "spend_logs.csv"
    target.parent.mkdir(parents=True)
    shutil.copy(SPEND / "spend_logs.csv", target)
    inputs.write("people.csv", "user_id,team,aliases\nalice,payments,alice@corp.example\n")
    summary = run_load(con, inputs.path)

    assert table(con, "token_usage WHERE tool = 'litellm'", "request_id, user_id, input_tokens, cost_usd") == [
        ("chatcmpl-001", "alice", 2000, 0.0213),  # alias resolved
        ("chatcmpl-002", "bob@corp.example", 1800, 0.0031),
    ]
    # alice is an alias of a person: LiteLLM's team for her is not offered; carol had no person yet
    assert table(con, "people", "user_id, team") == [("alice", "payments"), ("carol@corp.example", "team-uuid-2")]
    assert rejected(con) == [
        ("spend_logs.csv", 3, "not an integer: input_tokens"),
        ("spend_logs.csv", 4, "missing required field: input_tokens"),  # a failed call reports no tokens
        ("spend_logs.csv", 5, "malformed CSV record"),
    ]
    people = summary.datasets["people"]
    assert (people.files_seen, people.rows_given, people.rows_loaded, people.rows_rejected) == (2, 2, 2, 0)
