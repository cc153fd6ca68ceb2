"""OpenTelemetry GenAI spans (Collector file exporter, OTLP JSON lines of traces) -> token_usage, invocations."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb

from pipeline.ingest.sources.otel_genai import read_otel_genai
from tests.pipeline.conftest import FIXTURES, InputDir, rejected, run_load, table

TRACES = FIXTURES / "sources" / "otel_genai" / "traces.jsonl"
T1, T2 = "5b8efff798038103d269b633813fc60c", "0af7651916cd43dd8448eb211c80319c"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_model_call_spans_become_token_usage_rows() -> None:
    rows = read_otel_genai(TRACES).rows["token_usage"].drop("__raw").rows()
    assert rows == [
        # Copilot's chat calls: input_tokens holds the cache (the conventions' count), less it; the user
        # (user.name) and the session come from the invoke_agent span above them
        (1, "chatcmpl-001", "2026-10-05T09:00:01.000000Z", "alice-gh", "conv-alice-1", "gpt-4o", "300", "250", "1200",
         None, "copilot-chat"),
        (4, "chatcmpl-002", "2026-10-05T09:00:07.000000Z", "alice-gh", "conv-alice-1", "gpt-4o", "200", "400", "1500",
         "300", "copilot-chat"),
        # Anthropic's uncached count passed on as is (100 < 5000 + 200): kept; no response id: trace and span ids
        (8, f"{T2}:b2c0000000000002", "2026-10-05T10:00:32.000000Z", "bob@corp.example", "sess-bob-7",
         "claude-sonnet-4-5", "100", "80", "5000", "200", "support-bot"),
        (9, "emb-77", "2026-10-05T10:00:41.000000Z", "bob@corp.example", "sess-bob-7", "text-embedding-3-small",
         "40", "0", None, None, "support-bot"),  # embeddings produce no output tokens
        (17, "chatcmpl-100", "2026-10-06T02:00:00.000000Z", None, "conv-batch", "gpt-5", "900", "90", None, None,
         "batch-job"),  # nobody named: the loader rejects it
        (18, "cmpl-009", "2026-10-06T02:01:00.000000Z", "carol", "sess-carol", "gpt-4.1", "700", "50", None, None,
         "batch-job"),  # enduser.id, session.id, deprecated prompt_tokens / completion_tokens
        (19, "chatcmpl-101", "2026-10-06T02:02:00.000000Z", "carol", "conv-carol", "gpt-4.1", "12.5", "3", None, None,
         "batch-job"),  # passed on for the loader to reject
    ]


def test_an_agent_span_is_an_invocation_never_usage() -> None:
    out = read_otel_genai(TRACES)
    assert out.rows["invocations"].drop("__raw").rows() == [
        # Copilot's turn: repository from github.copilot.git.repository; its two execute_tool spans
        (5, f"{T1}:eee19b7ec3c1b174", "2026-10-05T09:00:00.000000Z", "alice-gh", "conv-alice-1", "shop/checkout", "2"),
        # the subagent (invoke_agent under execute_tool) is no invocation of its own; its tool call counts here
        (15, f"{T2}:b2a0000000000001", "2026-10-05T10:00:00.000000Z", "bob@corp.example", "sess-bob-7", "shop/support", "2"),
    ]
    # the agent span's 3500 input tokens are its chat calls' sum: not a token_usage row
    assert 5 not in out.rows["token_usage"]["__position"].to_list()


def test_spans_no_row_comes_from_are_rejected_or_skipped() -> None:
    out = read_otel_genai(TRACES)
    assert out.rejects.select("dataset", "position", "reason").rows() == [
        ("token_usage", 6, "malformed JSON"),
        ("token_usage", 7, "failed call (error.type overloaded_error)"),
        ("token_usage", 10, "not a GenAI span: POST"),
        ("token_usage", 14, "unknown GenAI operation with token usage: rerank"),
        ("token_usage", 16, "not an OTLP traces export"),
        ("token_usage", 20, "not a JSON object"),
    ]
    # every span is a row, a reject, or a GenAI span with no contract data (tool calls, the subagent)
    given = set(range(1, 21))
    used = set(out.rows["token_usage"]["__position"]) | set(out.rows["invocations"]["__position"]) | set(out.rejects["position"])
    assert given - used == {2, 3, 11, 12, 13}


def span(span_id: str, operation: str | None, parent: str = "", status: dict | None = None, **attributes) -> dict:
    attrs = [{"key": "gen_ai.operation.name", "value": {"stringValue": operation}}] if operation else []
    for key, value in attributes.items():
        key = key.replace("__", ".")
        attrs.append({"key": key, "value": {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}})
    return {"traceId": TRACE, "spanId": span_id, "parentSpanId": parent, "name": operation or "work", "kind": 3,
            "startTimeUnixNano": "1791190800000000000", "endTimeUnixNano": "1791190801000000000",
            "attributes": attrs, "status": status or {}}


def read(tmp_path: Path, spans: list[dict], resource: dict | None = None) -> tuple[list, list, list]:
    attrs = [{"key": k, "value": {"stringValue": v}} for k, v in (resource or {"user.id": "u1", "session.id": "s1"}).items()]
    line = {"resourceSpans": [{"resource": {"attributes": attrs}, "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}
    path = tmp_path / "traces.jsonl"
    path.write_text(json.dumps(line) + "\n")
    out = read_otel_genai(path)
    return (out.rows["token_usage"].select("__position", "input_tokens", "cache_read_tokens", "cache_write_tokens").rows(),
            out.rows["invocations"].select("__position", "tool_calls").rows(),
            out.rejects.select("position", "reason").rows())


def test_input_tokens_count_the_cache_once(tmp_path: Path) -> None:
    usage, _, _ = read(tmp_path, [
        span("01", "chat", gen_ai__usage__input_tokens=1000, gen_ai__usage__output_tokens=1,
             gen_ai__usage__cache_read__input_tokens=600, gen_ai__usage__cache_creation__input_tokens=100),
        span("02", "chat", gen_ai__usage__input_tokens=1000, gen_ai__usage__output_tokens=1),  # no cache reported
        span("03", "generate_content", gen_ai__usage__input_tokens=700, gen_ai__usage__output_tokens=1,
             gen_ai__usage__cache_read__input_tokens=700),  # all of it from the cache
        span("04", "text_completion", gen_ai__usage__input_tokens=50, gen_ai__usage__output_tokens=1,
             gen_ai__usage__cache_read__input_tokens=600),  # the provider's uncached count: kept
        span("05", "chat", gen_ai__usage__output_tokens=1),  # no input count: NULL, the loader's missing field
    ])
    assert usage == [(1, "300", "600", "100"), (2, "1000", None, None), (3, "0", "700", None), (4, "50", "600", None),
                     (5, None, None, None)]


def test_only_model_calls_count_whatever_the_agents_around_them_report(tmp_path: Path) -> None:
    usage, invocations, rejects = read(tmp_path, [
        span("0a", "invoke_agent", gen_ai__usage__input_tokens=300, gen_ai__usage__output_tokens=30),
        span("0b", "chat", parent="0a", gen_ai__usage__input_tokens=100, gen_ai__usage__output_tokens=10),
        span("0c", "execute_tool", parent="0a"),
        span("0d", "invoke_agent", parent="0c", gen_ai__usage__input_tokens=200, gen_ai__usage__output_tokens=20),
        span("0e", "chat", parent="0d", gen_ai__usage__input_tokens=200, gen_ai__usage__output_tokens=20),
        span("0f", "invoke_workflow", gen_ai__usage__input_tokens=300, gen_ai__usage__output_tokens=30),
        span("10", "chat", parent="0a", status={"code": 2}, gen_ai__usage__input_tokens=5, gen_ai__usage__output_tokens=0),
        span("11", "execute_tool", parent="0d"),
    ])
    assert [(p, i) for p, i, *_ in usage] == [(2, "100"), (5, "200")]  # 300 tokens, once
    assert invocations == [(1, "2")]  # the nested agent is part of the top one's turn
    assert rejects == [(7, "failed call (status error)")]


def test_a_span_inherits_user_and_session_from_the_nearest_span_above(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    spans = [
        span("a0", "invoke_agent", user__id="outer", gen_ai__conversation__id="conv-1"),
        span("a1", "invoke_agent", parent="a0", user__id="inner"),
        span("c1", "chat", parent="a1", gen_ai__usage__input_tokens=1, gen_ai__usage__output_tokens=1),
        span("c2", "chat", parent="a1", session__id="own", gen_ai__usage__input_tokens=1, gen_ai__usage__output_tokens=1),
        span("c3", "chat", parent="ff", gen_ai__usage__input_tokens=1, gen_ai__usage__output_tokens=1),  # parent not in the file
    ]
    path.write_text(json.dumps({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": spans}]}]}) + "\n")
    out = read_otel_genai(path)
    assert out.rows["token_usage"].select("__position", "user_id", "session_id").rows() == [
        (3, "inner", "conv-1"), (4, "inner", "own"), (5, None, None),
    ]
    assert out.rows["invocations"].select("__position", "user_id", "session_id").rows() == [
        (1, "outer", "conv-1"),  # the top-level agent; a1 is nested
    ]
    assert out.rows["token_usage"]["tool"].unique().to_list() == ["otel-genai"]  # no service.name


def test_loaded_through_the_loader(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    target = inputs.path / "sources" / "otel_genai" / "collector" / "traces.jsonl"
    target.parent.mkdir(parents=True)
    shutil.copy(TRACES, target)
    summary = run_load(con, inputs.path)

    assert table(con, "token_usage WHERE session_id <> 's-0'",
                 "request_id, user_id, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, tool",
                 "ts") == [
        ("chatcmpl-001", "alice-gh", "gpt-4o", 300, 250, 1200, 0, "copilot-chat"),
        ("chatcmpl-002", "alice-gh", "gpt-4o", 200, 400, 1500, 300, "copilot-chat"),
        (f"{T2}:b2c0000000000002", "bob@corp.example", "claude-sonnet-4-5", 100, 80, 5000, 200, "support-bot"),
        ("emb-77", "bob@corp.example", "text-embedding-3-small", 40, 0, 0, 0, "support-bot"),
        ("cmpl-009", "carol", "gpt-4.1", 700, 50, 0, 0, "batch-job"),
    ]
    assert table(con, "invocations WHERE session_id <> 's-0'", "invocation_id, user_id, session_id, repo, tool_calls", "ts") == [
        (f"{T1}:eee19b7ec3c1b174", "alice-gh", "conv-alice-1", "shop/checkout", 2),
        (f"{T2}:b2a0000000000001", "bob@corp.example", "sess-bob-7", "shop/support", 2),
    ]
    assert rejected(con) == [  # the adapter's rejects and the loader's, at the spans' positions
        ("traces.jsonl", 6, "malformed JSON"),
        ("traces.jsonl", 7, "failed call (error.type overloaded_error)"),
        ("traces.jsonl", 10, "not a GenAI span: POST"),
        ("traces.jsonl", 14, "unknown GenAI operation with token usage: rerank"),
        ("traces.jsonl", 16, "not an OTLP traces export"),
        ("traces.jsonl", 17, "missing required field: user_id"),
        ("traces.jsonl", 19, "not an integer: input_tokens"),
        ("traces.jsonl", 20, "not a JSON object"),
    ]
    tokens, prompts = summary.datasets["token_usage"], summary.datasets["invocations"]
    # loaded + rejected = given (the MINIMAL contract file's row included)
    assert (tokens.rows_given, tokens.rows_loaded, tokens.rows_rejected) == (14, 6, 8)
    assert (prompts.rows_given, prompts.rows_loaded, prompts.rows_rejected) == (3, 3, 0)
