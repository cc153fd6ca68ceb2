"""GitHub Copilot user-day usage reports -> one synthetic session per user and day."""
from __future__ import annotations

import shutil

import duckdb

from pipeline.ingest.sources.copilot import read_copilot_user_days
from tests.pipeline.conftest import FIXTURES, InputDir, rejected, run_load, table

REPORT = FIXTURES / "sources" / "copilot" / "users-1-day.ndjson"


def test_a_user_day_is_one_session_with_one_request_and_one_prompt() -> None:
    out = read_copilot_user_days(REPORT)
    assert out.rows["token_usage"].drop("__raw").rows() == [
        # tokens: totals_by_cli (3800 / 5000) plus totals_by_copilot_app (5400 / 4300)
        (1, "copilot:alice-gh:2026-10-05", "2026-10-05T12:00:00Z", "alice-gh", "copilot:alice-gh:2026-10-05", "copilot",
         "9200", "9300", "copilot"),
        (2, "copilot:bob-gh:2026-10-05", "2026-10-05T12:00:00Z", "bob-gh", "copilot:bob-gh:2026-10-05", "copilot",
         "0", "0", "copilot"),  # IDE use only: no token counts
        (5, "copilot:carol-gh:not-a-day", "not-a-day", "carol-gh", "copilot:carol-gh:not-a-day", "copilot", "0", "0", "copilot"),
    ]
    assert out.rows["invocations"].select("__position", "invocation_id", "lines_accepted").rows() == [
        (1, "copilot:alice-gh:2026-10-05", "8"), (2, "copilot:bob-gh:2026-10-05", "30"), (5, "copilot:carol-gh:not-a-day", "1"),
    ]
    assert out.rejects.select("position", "reason").rows() == [(3, "not a user-day record"), (4, "malformed JSON")]


def test_loaded_through_the_loader(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    target = inputs.path / "sources" / "copilot" / "2026-10-05.ndjson"
    target.parent.mkdir(parents=True)
    shutil.copy(REPORT, target)
    summary = run_load(con, inputs.path)
    assert table(con, "token_usage WHERE tool = 'copilot'", "user_id, input_tokens, output_tokens, cost_source") == [
        ("alice-gh", 9200, 9300, "unpriced"), ("bob-gh", 0, 0, "unpriced"),
    ]
    assert table(con, "invocations WHERE session_id LIKE 'copilot:%'", "user_id, lines_accepted, prompt_fingerprint") == [
        ("alice-gh", 8, None), ("bob-gh", 30, None),
    ]
    assert rejected(con) == [
        ("2026-10-05.ndjson", 3, "not a user-day record"),
        ("2026-10-05.ndjson", 4, "malformed JSON"),
        ("2026-10-05.ndjson", 5, "unparseable timestamp: ts"),  # invocations
        ("2026-10-05.ndjson", 5, "unparseable timestamp: ts"),  # token_usage
    ]
    assert summary.datasets["token_usage"].rows_unpriced == 2
