"""LiteLLM spend logs (CSV or JSON export of LiteLLM_SpendLogs) -> token_usage, and people teams."""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import duckdb
import pytest
import zstandard

from pipeline.ingest.sources import base
from pipeline.ingest.sources.litellm import read_litellm_spend_logs
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
    ]
    assert out.rows["people"].drop("__raw").rows() == [
        (1, "alice@corp.example", "payments"),  # her team alias (her newer row 4 is a rejected failed call)
        (3, "carol@corp.example", "team-uuid-2"),  # no alias: the team id
    ]
    assert out.rejects.select("position", "reason").rows() == [
        (4, "failed call (status failure)"), (5, "malformed CSV record"),
    ]
    assert "secret prompt text" not in str(out.rejects["raw"].to_list()) + "".join(out.rows["token_usage"]["__raw"])



@pytest.mark.parametrize("suffix, compress", [(".gz", gzip.compress), (".zst", lambda b: zstandard.ZstdCompressor().compress(b))])
def test_a_compressed_csv_export_reads_like_the_plain_one(tmp_path: Path, suffix: str, compress) -> None:
    plain = read_litellm_spend_logs(SPEND / "spend_logs.csv")
    packed = tmp_path / f"spend_logs.csv{suffix}"
    packed.write_bytes(compress((SPEND / "spend_logs.csv").read_bytes()))
    out = read_litellm_spend_logs(packed)
    assert out.rows["token_usage"].equals(plain.rows["token_usage"])
    assert out.rejects.select("position", "reason").equals(plain.rejects.select("position", "reason"))

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
        ("spend_logs.csv", 4, "failed call (status failure)"),
        ("spend_logs.csv", 5, "malformed CSV record"),
    ]
    people = summary.datasets["people"]
    assert (people.files_seen, people.rows_given, people.rows_loaded, people.rows_rejected) == (2, 2, 2, 0)


# --- records written from LiteLLM's schema (schema.prisma `LiteLLM_SpendLogs`; metadata as built by
# proxy/spend_tracking/spend_tracking_utils.py: additional_usage_values = the call's usage less
# prompt/completion/total tokens, usage_object = the whole usage in newer versions) -----------------


def spend_log(request_id: str, prompt: int | None = 100, completion: int | None = 20, **fields: object) -> dict[str, object]:
    """One LiteLLM_SpendLogs row as the proxy writes it (token counts default to 0 in its schema)."""
    return {"request_id": request_id, "call_type": "acompletion", "api_key": "hashed-key", "spend": 0.001,
            "total_tokens": (prompt or 0) + (completion or 0), "prompt_tokens": prompt, "completion_tokens": completion,
            "startTime": "2026-10-05T09:00:00Z", "endTime": "2026-10-05T09:00:01Z", "model": "claude-sonnet-4-5",
            "model_group": "claude-sonnet", "user": "alice@corp.example", "team_id": "team-1", "session_id": "sess-1",
            "messages": {}, "response": {}, **fields}


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def tokens(out: base.SourceRows) -> list[tuple[object, ...]]:
    return out.rows["token_usage"].select(
        "__position", "request_id", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens").rows()


def reasons(out: base.SourceRows) -> list[tuple[object, ...]]:
    return out.rejects.select("position", "reason").rows()


def test_a_failed_call_is_rejected_not_loaded_with_zero_tokens(tmp_path: Path) -> None:
    out = read_litellm_spend_logs(write_jsonl(tmp_path / "spend.jsonl", [
        spend_log("ok-1", status="success"),
        # a failed call: the schema's default 0 tokens; the status column says failure
        spend_log("fail-1", 0, 0, status="failure", metadata={"status": "failure", "error_information": {"error_code": "429"}}),
        spend_log("old-1"),  # a LiteLLM version without the status column: a success
        # status column empty (rows written before it existed): metadata.status decides
        spend_log("fail-2", 0, 0, status=None, metadata={"status": "failure"}),
        spend_log("ok-2", status=None, metadata={"status": "success"}),
    ]))
    assert tokens(out) == [(1, "ok-1", "100", "20", None, None), (3, "old-1", "100", "20", None, None),
                           (5, "ok-2", "100", "20", None, None)]
    assert reasons(out) == [(2, "failed call (status failure)"), (4, "failed call (status failure)")]
    assert json.loads(out.rejects["raw"][0])["request_id"] == "fail-1"
    assert out.rows["token_usage"].height + out.rejects.height == 5


def test_openai_style_usage_counts_cached_tokens_inside_prompt_tokens(tmp_path: Path) -> None:
    # OpenAI usage: prompt_tokens include prompt_tokens_details.cached_tokens; no cache writes reported
    usage = {"prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": None},
             "completion_tokens_details": {"reasoning_tokens": 0}}
    out = read_litellm_spend_logs(write_jsonl(tmp_path / "spend.jsonl", [
        spend_log("oa-1", 1500, 30, model="gpt-4o", metadata={"additional_usage_values": usage}),
    ]))
    assert tokens(out) == [(1, "oa-1", "476", "30", "1024", None)]


def test_anthropic_style_usage_reports_cache_reads_twice_but_counts_them_once(tmp_path: Path) -> None:
    # Anthropic via LiteLLM: prompt_tokens = input_tokens (100) + cache reads + cache writes, and the
    # reads are both cache_read_input_tokens and prompt_tokens_details.cached_tokens (same tokens)
    usage = {"cache_read_input_tokens": 3000, "cache_creation_input_tokens": 500,
             "prompt_tokens_details": {"cached_tokens": 3000, "cache_creation_tokens": 500}}
    out = read_litellm_spend_logs(write_jsonl(tmp_path / "spend.jsonl", [
        spend_log("an-1", 3600, 40, metadata={"additional_usage_values": usage}),
        # metadata as JSON text (a CSV or row_to_json export of the Json column) reads the same
        spend_log("an-2", 3600, 40, metadata=json.dumps({"additional_usage_values": usage})),
    ]))
    assert tokens(out) == [(1, "an-1", "100", "40", "3000", "500"), (2, "an-2", "100", "40", "3000", "500")]


def test_newer_versions_repeat_the_usage_in_usage_object_counted_once(tmp_path: Path) -> None:
    usage = {"cache_read_input_tokens": 3000, "cache_creation_input_tokens": 500}
    whole = {"prompt_tokens": 3600, "completion_tokens": 40, "total_tokens": 3640, **usage}
    out = read_litellm_spend_logs(write_jsonl(tmp_path / "spend.jsonl", [
        spend_log("both-1", 3600, 40, metadata={"additional_usage_values": usage, "usage_object": whole}),
        spend_log("uo-1", 3600, 40, metadata={"usage_object": whole}),  # only usage_object
    ]))
    assert tokens(out) == [(1, "both-1", "100", "40", "3000", "500"), (2, "uo-1", "100", "40", "3000", "500")]


def test_versions_that_leave_cache_writes_out_of_prompt_tokens(tmp_path: Path) -> None:
    # some LiteLLM versions' Anthropic mapping add only the cache reads to prompt_tokens:
    # input 100 + reads 3000 = 3100, writes 5000 reported beside it
    usage = {"cache_read_input_tokens": 3000, "cache_creation_input_tokens": 5000,
             "prompt_tokens_details": {"cached_tokens": 3000}}
    out = read_litellm_spend_logs(write_jsonl(tmp_path / "spend.jsonl", [
        spend_log("w-1", 3100, 40, metadata={"additional_usage_values": usage}),
    ]))
    assert tokens(out) == [(1, "w-1", "100", "40", "3000", "5000")]


def test_older_versions_without_cache_details_keep_prompt_tokens_as_input(tmp_path: Path) -> None:
    out = read_litellm_spend_logs(write_jsonl(tmp_path / "spend.jsonl", [
        spend_log("v-1", 900, 10, metadata={"user_api_key_user_id": "alice@corp.example"}),
        spend_log("v-2", 900, 10, metadata={"additional_usage_values": {}}),
    ]))
    assert tokens(out) == [(1, "v-1", "900", "10", None, None), (2, "v-2", "900", "10", None, None)]


def page(records: list[object], number: int, pages: int) -> dict[str, object]:
    """One page of the proxy's spend logs API."""
    return {"data": records, "total": 3, "page": number, "page_size": 2, "total_pages": pages}


def test_api_pages_pretty_printed_one_after_another(tmp_path: Path) -> None:
    path = tmp_path / "spend.json"
    path.write_text(json.dumps(page([spend_log("p-1"), spend_log("p-2", 200)], 1, 2), indent=2) + "\n"
                    + json.dumps(page([spend_log("p-3", 300)], 2, 2), indent=2) + "\n")
    out = read_litellm_spend_logs(path)
    assert tokens(out) == [(1, "p-1", "100", "20", None, None), (2, "p-2", "200", "20", None, None),
                           (3, "p-3", "300", "20", None, None)]
    assert out.rejects.height == 0


def test_api_pages_as_json_lines_or_an_array(tmp_path: Path) -> None:
    pages = [page([spend_log("p-1"), spend_log("p-2", 200)], 1, 2), page([spend_log("p-3", 300)], 2, 2)]
    for path in (write_jsonl(tmp_path / "spend.jsonl", pages), tmp_path / "spend.json"):
        if path.suffix == ".json":
            path.write_text(json.dumps(pages))
        out = read_litellm_spend_logs(path)
        assert out.rows["token_usage"].select("__position", "request_id", "input_tokens").rows() == [
            (1, "p-1", "100"), (2, "p-2", "200"), (3, "p-3", "300")], path.name


def test_bad_pages_and_records_are_rejected_with_reasons(tmp_path: Path) -> None:
    path = tmp_path / "spend.jsonl"
    path.write_text("\n".join([
        json.dumps(page([spend_log("p-1"), "oops", spend_log("p-2", 0, 0, status="failure")], 1, 3)),
        json.dumps(page([], 2, 3)),  # an empty page holds no record
        json.dumps({"data": None, "page": 3, "total_pages": 3}),
        json.dumps(spend_log("m-1", metadata="not json {")),
        '{"request_id": "cut',
        json.dumps(spend_log("ok-1")),
    ]) + "\n")
    out = read_litellm_spend_logs(path)
    assert tokens(out) == [(1, "p-1", "100", "20", None, None), (7, "ok-1", "100", "20", None, None)]
    assert reasons(out) == [
        (2, "not a JSON object"), (3, "failed call (status failure)"), (4, "malformed page: data is not a JSON array"),
        (5, "malformed metadata: not a JSON object"), (6, "malformed JSON"),
    ]
    # every record given is loaded or rejected: 3 in page 1, none in page 2, page 3, and three loose lines
    assert out.rows["token_usage"].height + out.rejects.height == 7
