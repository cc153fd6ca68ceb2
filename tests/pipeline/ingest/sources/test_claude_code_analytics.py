"""Claude Code Analytics Admin API reports -> one synthetic session per actor-day: token_usage per model, invocations per day."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb

from pipeline.ingest.sources.claude_code_analytics import read_claude_code_analytics
from tests.pipeline.conftest import FIXTURES, InputDir, rejected, run_load, table

REPORTS = FIXTURES / "sources" / "claude_code_analytics"
PAGES = REPORTS / "2026-10-05.json"  # two responses back to back, pretty-printed
LINES = REPORTS / "2026-10-06.jsonl"  # one record per line, a malformed line, an error response, a record repeated
SONNET, HAIKU, OPUS = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001", "claude-opus-4-1-20250805"
NOON = "2026-10-05T12:00:00Z"


def session(actor: str, day: str = "2026-10-05") -> str:
    return f"claude-code-analytics:{actor}:{day}"


def test_an_actor_day_is_one_session_with_a_request_per_model_and_one_invocation() -> None:
    out = read_claude_code_analytics(PAGES)
    assert out.rows["invocations"].select("__position", "ts", "user_id", "session_id", "lines_accepted").rows() == [
        (1, NOON, "alice@corp.example", session("alice@corp.example"), "1543"),
        (2, NOON, "api-key:ci-review-bot", session("api-key:ci-review-bot"), "120"),  # an api_actor: no email
        (3, NOON, "carol@corp.example", session("carol@corp.example"), "0"),  # a day without model_breakdown
        (5, NOON, "dave@corp.example", session("dave@corp.example"), None),  # no lines_of_code: unknown, not 0
        (6, NOON, "erin@corp.example", session("erin@corp.example"), "5"),
    ]
    tokens = "__position", "user_id", "session_id", "model", "input_tokens", "output_tokens", "cache_read_tokens", \
        "cache_write_tokens", "cost_usd", "tool"
    assert out.rows["token_usage"].select(tokens).rows() == [
        (1, "alice@corp.example", session("alice@corp.example"), SONNET, "100000", "35000", "10000", "5000", "10.25",
         "claude-code"),  # 1025 cents
        (2, "alice@corp.example", session("alice@corp.example"), HAIKU, "20000", "4000", "0", "0", "0.04", "claude-code"),
        (3, "api-key:ci-review-bot", session("api-key:ci-review-bot"), SONNET, "250000", "60000", "900000", "40000", "22.1",
         "claude-code"),
        (4, "dave@corp.example", session("dave@corp.example"), OPUS, None, "800", "0", "0", "0.31", "claude-code"),
    ]
    assert out.rejects.select("dataset", "position", "reason").rows() == [
        ("invocations", 4, "no actor identity: neither email_address nor api_key_name"),
        ("token_usage", 5, "not a JSON object"),  # dave's second entry is a bare string
        ("token_usage", 6, "malformed model_breakdown: not a JSON array"),  # erin's
    ]


def test_ids_are_stable_across_exports_and_differ_per_model() -> None:
    first, again = read_claude_code_analytics(PAGES), read_claude_code_analytics(LINES)
    day_ids = first.rows["invocations"]["invocation_id"].to_list()
    assert again.rows["invocations"].filter(__position=4)["invocation_id"].to_list() == day_ids[:1]
    request_ids = first.rows["token_usage"]["request_id"].to_list()
    assert again.rows["token_usage"].filter(user_id="alice@corp.example", ts=NOON)["request_id"].to_list() == request_ids[:2]
    assert len(set(request_ids)) == 4 and all(i.startswith("claude-code-analytics:") for i in request_ids + day_ids)


def test_unreadable_lines_and_error_responses_are_rejected_with_their_reason() -> None:
    out = read_claude_code_analytics(LINES)
    assert out.rows["invocations"].select("__position", "session_id", "lines_accepted").rows() == [
        (1, session("alice@corp.example", "2026-10-06"), "210"), (4, session("alice@corp.example"), "1543"),
    ]
    assert out.rejects.select("dataset", "position", "reason").rows() == [
        ("invocations", 2, "malformed JSON"), ("invocations", 3, "API error response: rate_limit_error"),
    ]


def test_a_cost_in_another_currency_is_left_to_the_price_table(tmp_path: Path) -> None:
    record = {"date": "2026-10-05", "actor": {"type": "user_actor", "email_address": "alice@corp.example"},
              "core_metrics": {"num_sessions": 1, "lines_of_code": {"added": 3, "removed": 0}},
              "model_breakdown": [
                  {"model": SONNET, "tokens": {"input": 10, "output": 5}, "estimated_cost": {"currency": "EUR", "amount": 7}},
                  {"model": HAIKU, "tokens": {"input": 10, "output": 5}, "estimated_cost": {"amount": 7}},  # USD, the default
                  {"model": OPUS, "tokens": {"input": 10, "output": 5}, "estimated_cost": {"currency": "USD", "amount": "n/a"}},
                  {"model": "claude-3-haiku", "tokens": {"input": 10, "output": 5}},  # no estimate at all
              ]}
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"data": [record], "has_more": False, "next_page": None}))
    out = read_claude_code_analytics(page)
    assert out.rows["token_usage"].select("model", "ts", "cost_usd", "cache_read_tokens").rows() == [
        (SONNET, NOON, None, None), (HAIKU, NOON, "0.07", None), (OPUS, NOON, "n/a", None), ("claude-3-haiku", NOON, None, None),
    ]


def test_loaded_through_the_loader(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    folder = inputs.path / "sources" / "claude_code_analytics"
    folder.mkdir(parents=True)
    for report in (PAGES, LINES):
        shutil.copy(report, folder / report.name)
    for default in ("token_usage.csv", "invocations.jsonl"):  # the source fills both datasets
        (inputs.path / default).unlink()
    summary = run_load(con, inputs.path)

    assert table(con, "token_usage", "user_id, ts::VARCHAR, model, input_tokens, cache_write_tokens, cost_usd, cost_source, tool") == [
        ("alice@corp.example", "2026-10-05 12:00:00", HAIKU, 20000, 0, 0.04, "input", "claude-code"),
        ("alice@corp.example", "2026-10-05 12:00:00", SONNET, 100000, 5000, 10.25, "input", "claude-code"),
        ("alice@corp.example", "2026-10-06 12:00:00", SONNET, 52000, 12000, 4.09, "input", "claude-code"),
        ("api-key:ci-review-bot", "2026-10-05 12:00:00", SONNET, 250000, 40000, 22.1, "input", "claude-code"),
    ]
    assert table(con, "invocations", "session_id, lines_accepted, prompt_fingerprint, repo") == [
        (session("alice@corp.example"), 1543, None, None),
        (session("alice@corp.example", "2026-10-06"), 210, None, None),
        (session("api-key:ci-review-bot"), 120, None, None),
        (session("carol@corp.example"), 0, None, None),
        (session("dave@corp.example"), None, None, None),
        (session("erin@corp.example"), 5, None, None),
    ]
    assert rejected(con, "invocations") == [
        ("2026-10-05.json", 4, "no actor identity: neither email_address nor api_key_name"),
        ("2026-10-06.jsonl", 2, "malformed JSON"),
        ("2026-10-06.jsonl", 3, "API error response: rate_limit_error"),
        ("2026-10-06.jsonl", 4, "duplicate"),  # the same actor-day exported again: the first copy stands
    ]
    assert rejected(con, "token_usage") == [
        ("2026-10-05.json", 4, "missing required field: input_tokens"),  # unknown, not 0
        ("2026-10-05.json", 5, "not a JSON object"),
        ("2026-10-05.json", 6, "malformed model_breakdown: not a JSON array"),
        ("2026-10-06.jsonl", 2, "duplicate"),
        ("2026-10-06.jsonl", 3, "duplicate"),
    ]
    counts = {name: (d.rows_given, d.rows_loaded, d.rows_rejected) for name, d in summary.datasets.items()
              if name in ("token_usage", "invocations")}
    assert counts == {"token_usage": (9, 4, 5), "invocations": (10, 6, 4)}  # loaded + rejected = given
    assert table(con, "loaded_files WHERE source <> 'contract'", "dataset, rows_given, rows_loaded, rows_rejected",
                 order="path, dataset") == [
        ("invocations", 6, 5, 1), ("token_usage", 6, 3, 3),  # 2026-10-05.json
        ("invocations", 4, 1, 3), ("token_usage", 3, 1, 2),  # 2026-10-06.jsonl
    ]
