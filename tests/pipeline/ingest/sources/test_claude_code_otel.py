"""Claude Code OpenTelemetry logs (Collector file exporter, OTLP JSON lines) -> token_usage, invocations."""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil

import duckdb

from pipeline.ingest.fingerprint import UNKEYED, prompt_fingerprint
from pipeline.ingest.sources.claude_code_otel import read_claude_code_otel
from tests.conftest import TEST_KEY
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
    # the placeholder the loader keys before storing (pipeline.ingest.fingerprint.keyed_raw_sql)
    assert UNKEYED + hashlib.sha256(b"Fix the flaky checkout test").hexdigest() in rows["__raw"][0]


def test_records_that_are_no_claude_code_event_are_rejected_with_a_reason() -> None:
    assert read_claude_code_otel(LOGS).rejects.select("dataset", "position", "reason").rows() == [
        ("token_usage", 5, "malformed JSON"),
        ("token_usage", 8, "not a Claude Code event: gemini_cli.api_request"),
        ("token_usage", 9, "not an OTLP logs or metrics export"),
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
        ("p-0001", prompt_fingerprint("Fix the flaky checkout test", TEST_KEY), 27, "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"),
        ("p-0002", None, 12, None),
        (table(con, "invocations WHERE position = 11", "invocation_id")[0][0], None, None, "c0ffee0000000000000000000000000000000001"),
    ]
    assert rejected(con) == [  # the adapter's rejects and the loader's, with the vendor file's positions
        ("logs.jsonl", 5, "malformed JSON"),
        ("logs.jsonl", 7, "not an integer: input_tokens"),
        ("logs.jsonl", 8, "not a Claude Code event: gemini_cli.api_request"),
        ("logs.jsonl", 9, "not an OTLP logs or metrics export"),
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
        ("not an OTLP logs or metrics export", 1), ("not an integer: input_tokens", 1),
    ]


def test_a_truncated_gzip_keeps_the_lines_before_the_damage(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    data = gzip.compress(LOGS.read_bytes())
    target = inputs.path / "sources" / "claude_code_otel" / "logs.jsonl.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(data[: len(data) - 40])
    run_load(con, inputs.path)
    assert rejected(con)[-1][2] == "unreadable file: truncated gzip"


# --- metrics lines (lines of code), account ids, workspace paths: files written from the documented OTLP/JSON shape

def _kv(key: str, value: object) -> dict:
    if isinstance(value, list):
        return {"key": key, "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}}}
    return {"key": key, "value": {"stringValue": value}}


def _nanos(iso: str) -> str:
    import datetime
    return str(int(datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()) * 1_000_000_000)


def _prompt(prompt_id: str, session: str, iso: str, **attrs: object) -> dict:
    given = {"event.name": "user_prompt", "event.timestamp": iso, "session.id": session, "prompt.id": prompt_id,
             "prompt_length": "5", **attrs}
    return {"timeUnixNano": _nanos(iso), "body": {"stringValue": "claude_code.user_prompt"},
            "attributes": [_kv(k, v) for k, v in given.items()]}


def _logs(*records: dict, resource: dict[str, str] | None = None) -> dict:
    return {"resourceLogs": [{"resource": {"attributes": [_kv(k, v) for k, v in (resource or {}).items()]},
                              "scopeLogs": [{"logRecords": list(records)}]}]}


def _point(value: int | float | str, iso: str, **attrs: str) -> dict:
    point = {"attributes": [_kv(k, v) for k, v in attrs.items()], "startTimeUnixNano": _nanos("2026-10-05T08:00:00Z"),
             "timeUnixNano": _nanos(iso)}
    point["asDouble" if isinstance(value, float) else "asInt"] = value if isinstance(value, float) else str(value)
    return point


def _metrics(*metrics: tuple[str, int, list[dict]], resource: dict[str, str] | None = None) -> dict:
    return {"resourceMetrics": [{
        "resource": {"attributes": [_kv(k, v) for k, v in (resource or {"service.name": "claude-code"}).items()]},
        "scopeMetrics": [{"scope": {"name": "com.anthropic.claude_code"}, "metrics": [
            {"name": name, "unit": "count", "sum": {"aggregationTemporality": temporality, "isMonotonic": True, "dataPoints": points}}
            for name, temporality, points in metrics
        ]}],
    }]}


S1, S2, S3 = "sess-1", "sess-2", "sess-3"
ANON = "5f1e0c0ffee5f1e0c0ffee5f1e0c0ffee5f1e0c0ffee5f1e0c0ffee5f1e0c0ff"  # an install id, nobody signed in
CUMULATIVE, DELTA = 2, 1


def _metrics_lines() -> list[dict]:
    alice = {"user.account_id": "user_01ALICE", "user.email": "alice@corp.example", "user.id": "inst-a"}
    return [
        _logs(_prompt("p-1", S1, "2026-10-05T09:00:00Z", **alice), _prompt("p-2", S1, "2026-10-05T09:10:00Z", **alice),
              resource={"repo": "shop/checkout"}),
        _metrics(  # cumulative: 10 then 25 -> 10 on p-1, 15 on p-2; the removed lines are not read
            ("claude_code.lines_of_code.count", CUMULATIVE, [
                _point(10, "2026-10-05T09:05:00Z", **{"session.id": S1, "user.account_id": "user_01ALICE", "type": "added"}),
                _point(7, "2026-10-05T09:05:00Z", **{"session.id": S1, "user.account_id": "user_01ALICE", "type": "removed"}),
                _point(25, "2026-10-05T09:12:00Z", **{"session.id": S1, "user.account_id": "user_01ALICE", "type": "added"}),
            ]),
            ("claude_code.commit.count", CUMULATIVE, [_point(1, "2026-10-05T09:12:00Z", **{"session.id": S1})]),
        ),
        # delta, as a double: 4 more lines on p-2; a point without session.id cannot be placed
        _metrics(("claude_code.lines_of_code.count", DELTA, [
            _point(4.0, "2026-10-05T09:15:00Z", **{"session.id": S1, "type": "added"}),
            _point(3, "2026-10-05T09:15:00Z", type="added"),
        ])),
        # sess-2: an anonymous user, its repo from the desktop workspace path, metrics without lines: 0 lines
        _logs(_prompt("p-3", S2, "2026-10-05T10:00:00Z", **{"user.id": ANON,
                                                             "workspace.host_paths": ["/Users/bob/src/billing/", "/tmp/x"]})),
        _metrics(("claude_code.token.usage", DELTA, [_point(900, "2026-10-05T10:01:00Z", **{"session.id": S2, "type": "input"})])),
        # sess-3: lines but no prompt in the file: a row of its own per data point; another service's metric
        _metrics(("claude_code.lines_of_code.count", DELTA, [
            _point(6, "2026-10-05T11:00:00Z", **{"session.id": S3, "user.id": ANON, "type": "added"}),
        ]), ("http.server.duration", DELTA, [_point(1, "2026-10-05T11:00:00Z")]), resource={"repo": "shop/billing"}),
    ]


def test_lines_added_metrics_land_on_the_sessions_prompts(inputs: InputDir) -> None:
    path = inputs.jsonl("cc.jsonl", _metrics_lines())
    result = read_claude_code_otel(path)
    rows = result.rows["invocations"]
    assert rows.select("__position", "invocation_id", "user_id", "session_id", "repo", "lines_accepted").rows() == [
        (1, "p-1", "user_01ALICE", S1, "shop/checkout", "10"),  # user.account_id wins over the email
        (2, "p-2", "user_01ALICE", S1, "shop/checkout", "19"),  # 15 (cumulative increment) + 4 (delta)
        (9, "p-3", ANON, S2, "billing", "0"),  # metrics exported for the session, no lines: 0, not unknown
        (11, rows["invocation_id"][3], ANON, S3, "shop/billing", "6"),
    ]
    assert rows["invocation_id"][3].startswith("cc-")
    assert read_claude_code_otel(path).rows["invocations"]["invocation_id"].to_list() == rows["invocation_id"].to_list()
    assert result.rejects.select("dataset", "position", "reason").rows() == [
        ("invocations", 8, "no session.id: claude_code.lines_of_code.count"),
        ("invocations", 12, "not a Claude Code metric: http.server.duration"),
    ]
    assert result.rows["token_usage"].height == 0


def test_a_cumulative_reset_and_sessions_without_metrics() -> None:
    import tempfile
    from pathlib import Path
    lines = [
        _logs(_prompt("p-1", S1, "2026-10-05T09:00:00Z"), _prompt("p-9", S2, "2026-10-05T09:00:00Z")),
        _metrics(("claude_code.lines_of_code.count", CUMULATIVE, [
            _point(5, "2026-10-05T08:59:00Z", **{"session.id": S1, "type": "added"}),  # before any prompt: the first one
            _point(8, "2026-10-05T09:01:00Z", **{"session.id": S1, "type": "added"}),
            _point(2, "2026-10-05T09:02:00Z", **{"session.id": S1, "type": "added"}),  # a reset: counts whole
            _point("many", "2026-10-05T09:03:00Z", **{"session.id": S1, "type": "added"}),
        ])),
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cc.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
        result = read_claude_code_otel(path)
    assert result.rows["invocations"].select("invocation_id", "lines_accepted").rows() == [("p-1", "10"), ("p-9", None)]
    assert result.rejects.select("position", "reason").rows() == [(6, "not a number: claude_code.lines_of_code.count")]


def test_metrics_loaded_through_the_loader_and_an_install_id_mapped_by_aliases(
    con: duckdb.DuckDBPyConnection, inputs: InputDir,
) -> None:
    inputs.jsonl("sources/claude_code_otel/cc.jsonl", _metrics_lines())
    inputs.write("people.csv", f"user_id,team,aliases\nalice,payments,user_01ALICE\nbob,search,{ANON}\n")
    run_load(con, inputs.path)
    assert table(con, "invocations WHERE session_id LIKE 'sess-%'", "session_id, user_id, repo, lines_accepted", "ts") == [
        (S1, "alice", "shop/checkout", 10), (S1, "alice", "shop/checkout", 19),
        (S2, "bob", "billing", 0), (S3, "bob", "shop/billing", 6),
    ]
    assert table(con, "invocations WHERE session_id LIKE 'sess-%' GROUP BY session_id", "session_id, sum(lines_accepted)") == [
        (S1, 29), (S2, 0), (S3, 6),
    ]
    assert rejected(con, "invocations") == [
        ("cc.jsonl", 8, "no session.id: claude_code.lines_of_code.count"),
        ("cc.jsonl", 12, "not a Claude Code metric: http.server.duration"),
    ]
    assert table(con, "unmapped_identities WHERE identity IN ('user_01ALICE', '" + ANON + "')", "identity") == []


def test_a_prompt_without_tool_results_made_no_tool_call_unless_it_has_no_prompt_id(inputs: InputDir) -> None:
    """Regression (a generated world exported as vendor files): prompts with a prompt.id and no
    tool_result naming it loaded tool_calls NULL, where the correlated events say 0."""
    tool_result = {"timeUnixNano": _nanos("2026-10-05T09:00:30Z"), "body": {"stringValue": "claude_code.tool_result"},
                   "attributes": [_kv("event.name", "tool_result"), _kv("session.id", S1), _kv("prompt.id", "p-1"),
                                  _kv("tool_name", "Read")]}
    no_id = _prompt("unused", S1, "2026-10-05T09:20:00Z")
    no_id["attributes"] = [a for a in no_id["attributes"] if a["key"] != "prompt.id"]
    path = inputs.jsonl("cc.jsonl", [_logs(_prompt("p-1", S1, "2026-10-05T09:00:00Z"), tool_result,
                                           _prompt("p-2", S1, "2026-10-05T09:10:00Z"), no_id)])
    rows = read_claude_code_otel(path).rows["invocations"]
    assert rows.select("invocation_id", "tool_calls").rows()[:2] == [("p-1", "1"), ("p-2", "0")]
    assert rows["tool_calls"][2] is None  # no prompt.id: its tool results cannot be told apart
