"""A world's AI usage as the vendors export it: Claude Code OpenTelemetry lines and LiteLLM spend logs.

Part of `data/vendor_export.py` (which registers the world's tables and the shared ids on the
DuckDB connection these functions take; docs/sources.md, "A whole world as vendor exports").

Claude Code (OpenTelemetry Collector `file` exporter, OTLP/JSON, one export request a line):
every prompt is a `claude_code.user_prompt` event (its text, or `<REDACTED>` where the world
withheld it), each of its tool calls a `claude_code.tool_result` (the last one, a Bash `git
commit`, carries the commit id in `tool_parameters` when the turn committed), every model call of
a session that talks to Anthropic directly a `claude_code.api_request`. Metrics lines hold, per
session and 60 s export interval (delta temporality), `claude_code.session.count`,
`claude_code.lines_of_code.count` (type added: the world's kept lines) and
`claude_code.commit.count`. Log records are batched per session and 5 s (the logs export
interval); a session's lines go to the file of the day it started.

LiteLLM (`LiteLLM_SpendLogs` as the documented psql export writes it): the model calls of the
sessions that go through the gateway, one row each, `session_id` the Claude Code session (LiteLLM
takes it from the `X-Claude-Code-Session-Id` header), cache tokens in
`metadata.additional_usage_values`, `prompt_tokens` counting them as LiteLLM does.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl


def claude_code_lines(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every line of the Claude Code files: file_day, line_ts, line (JSON text), and the
    api_request and user_prompt records it holds (what a repeated copy of it rejects)."""
    con.execute(CC_EVENTS_SQL)
    con.execute(CC_RECORDS_SQL)
    con.execute(CC_POINTS_SQL)
    return con.sql(CC_LINES_SQL).pl()


def write_claude_code(lines: pl.DataFrame, folder: Path) -> list[Path]:
    """One `claude-code-<day>.jsonl` per day (the Collector's daily rotation); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for (day,), part in lines.sort("file_day", "line_ts", "sig").group_by("file_day", maintain_order=True):
        path = folder / f"claude-code-{day:%Y-%m-%d}.jsonl"
        path.write_text("\n".join(part["line"]) + "\n")
        written.append(path)
    return written


def spend_rows(con: duckdb.DuckDBPyConnection, failed_calls: int) -> pl.DataFrame:
    """The gateway's spend log rows (and `failed_calls` failed attempts before some of its calls),
    in the documented export's columns, plus file_day and ts."""
    con.execute(SPEND_SQL.format(failed_calls=int(failed_calls)))
    return con.sql("SELECT * FROM spend ORDER BY ts, request_id").pl()


def write_spend(rows: pl.DataFrame, path: Path) -> Path:
    """One spend log CSV (`\\copy ... WITH CSV HEADER`: empty fields for NULL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.select(SPEND_COLUMNS).write_csv(path, null_value="")
    return path


# --- SQL ---------------------------------------------------------------------------------

# every event of every session: prompts, tool results, and the model calls of direct sessions
CC_EVENTS_SQL = """
CREATE OR REPLACE TEMP TABLE cc_events AS
WITH prompts AS (
    SELECT i.*, v.vendor_id AS prompt_id,
           lead(i.ts) OVER (PARTITION BY i.session_id ORDER BY i.ts, i.invocation_id) AS next_ts,
           greatest(i.tool_calls, CAST(i.commit_sha IS NOT NULL AS INTEGER)) AS results
    FROM world_invocations i JOIN invocation_ids v USING (invocation_id)
),
tool_results AS (
    SELECT session_id, repo, ts, prompt_id, commit_sha, results,
           least(coalesce(epoch_ms(next_ts) - epoch_ms(ts), 600000), 600000) AS span_ms,
           unnest(range(results)) AS k
    FROM prompts
)
SELECT session_id, repo, ts, 0 AS kind, 0 AS k, 'user_prompt' AS event, prompt_id,
       [kv('prompt_length', prompt_length), kv('prompt', coalesce(prompt_text, '<REDACTED>'))] AS extra
FROM prompts
UNION ALL
SELECT session_id, repo, ts + to_milliseconds((k + 1) * span_ms // (results + 1)), 1, k, 'tool_result', prompt_id,
       CASE WHEN commit_sha IS NOT NULL AND k = results - 1
            THEN [kv('tool_name', 'Bash'), kv('success', 'true'),
                  kv('tool_parameters', CAST(json_object('bash_command', 'git', 'full_command', 'git commit -F -',
                                                         'git_commit_id', commit_sha) AS VARCHAR))]
            ELSE [kv('tool_name', tool_names()[k % len(tool_names()) + 1]), kv('success', 'true')] END
FROM tool_results
UNION ALL
SELECT t.session_id, p.repo, t.ts, 2, 0, 'api_request', p.prompt_id,
       [kv('model', coalesce(m.vendor_model, t.model)), kv('input_tokens', t.input_tokens),
        kv('output_tokens', t.output_tokens), kv('cache_read_tokens', t.cache_read_tokens),
        kv('cache_creation_tokens', t.cache_write_tokens), kv('cost_usd', t.cost_usd)]
FROM world_token_usage t
JOIN session_ids s ON s.session_id = t.session_id AND NOT s.gateway
LEFT JOIN models m ON m.model = t.model
ASOF LEFT JOIN prompts p ON p.session_id = t.session_id AND t.ts >= p.ts
"""

CC_RECORDS_SQL = """
CREATE OR REPLACE TEMP TABLE cc_records AS
SELECT s.file_day, e.session_id, e.repo, e.ts, e.kind, e.k, e.event,
       {'timeUnixNano': nanos(e.ts), 'observedTimeUnixNano': nanos(e.ts),
        'body': {'stringValue': 'claude_code.' || e.event},
        'attributes': present([kv('event.name', e.event), kv('event.timestamp', iso_ms(e.ts)),
                               kv('event.sequence', row_number() OVER (PARTITION BY e.session_id ORDER BY e.ts, e.kind, e.k)),
                               kv('session.id', s.vendor_id), kv('prompt.id', e.prompt_id)]
                              || u.attributes || [kv('terminal.type', 'vscode')] || e.extra)} AS record
FROM cc_events e
JOIN session_ids s USING (session_id)
JOIN user_attributes u ON u.user_id = s.user_id
"""

# sum data points per session and 60 s export interval (delta temporality)
CC_POINTS_SQL = """
CREATE OR REPLACE TEMP TABLE cc_points AS
WITH raw AS (
    SELECT session_id, time_bucket(INTERVAL 60 SECOND, first_ts) AS start, 'claude_code.session.count' AS metric,
           1 AS value, []::STRUCT(key VARCHAR, value STRUCT(stringValue VARCHAR))[] AS extra
    FROM session_ids WHERE has_prompts
    UNION ALL
    SELECT session_id, time_bucket(INTERVAL 60 SECOND, ts), 'claude_code.lines_of_code.count', sum(lines_accepted),
           [kv('type', 'added')]
    FROM world_invocations WHERE lines_accepted > 0 GROUP BY ALL
    UNION ALL
    SELECT session_id, time_bucket(INTERVAL 60 SECOND, ts), 'claude_code.commit.count', count(*), []
    FROM world_invocations WHERE commit_sha IS NOT NULL GROUP BY ALL
)
SELECT s.file_day, r.session_id, s.repo, r.start, r.metric,
       {'attributes': [kv('session.id', s.vendor_id)] || u.attributes || [kv('terminal.type', 'vscode')] || r.extra,
        'startTimeUnixNano': nanos(r.start), 'timeUnixNano': nanos(r.start + INTERVAL 60 SECOND),
        'asInt': CAST(r.value AS VARCHAR)} AS point
FROM raw r
JOIN session_ids s USING (session_id)
JOIN user_attributes u ON u.user_id = s.user_id
"""

CC_LINES_SQL = """
WITH log_lines AS (
    SELECT file_day, min(ts) AS line_ts, 0 AS sig,
           CAST(to_json({'resourceLogs': [{'resource': {'attributes': resource_attributes(repo)},
                                           'scopeLogs': [{'scope': {'name': 'com.anthropic.claude_code.events', 'version': claude_code_version()},
                                                          'logRecords': list(record ORDER BY ts, kind, k)}]}]}) AS VARCHAR) AS line,
           count(*) FILTER (WHERE event = 'api_request') AS api_requests,
           count(*) FILTER (WHERE event = 'user_prompt') AS user_prompts
    FROM cc_records
    GROUP BY file_day, session_id, repo, time_bucket(INTERVAL 5 SECOND, ts)
),
metrics AS (
    SELECT file_day, session_id, repo, start, metric,
           {'name': metric, 'description': any_value(d.description), 'unit': any_value(d.unit),
            'sum': {'dataPoints': list(point), 'aggregationTemporality': 1, 'isMonotonic': true}} AS m
    FROM cc_points JOIN metric_descriptions d USING (metric)
    GROUP BY file_day, session_id, repo, start, metric
),
metric_lines AS (
    SELECT file_day, start + INTERVAL 60 SECOND AS line_ts, 1 AS sig,
           CAST(to_json({'resourceMetrics': [{'resource': {'attributes': resource_attributes(repo)},
                                              'scopeMetrics': [{'scope': {'name': 'com.anthropic.claude_code', 'version': claude_code_version()},
                                                                'metrics': list(m ORDER BY metric)}]}]}) AS VARCHAR),
           0, 0
    FROM metrics GROUP BY file_day, session_id, repo, start
)
SELECT * FROM log_lines UNION ALL SELECT * FROM metric_lines
"""

# the gateway's calls; a failed attempt (no tokens, no spend, status failure) 2 s before every
# step-th call, `failed_calls` of them
SPEND_SQL = """
CREATE OR REPLACE TEMP TABLE spend AS
WITH calls AS (
    SELECT t.*, s.vendor_id AS vendor_session_id, coalesce(m.vendor_model, t.model) AS vendor_model,
           p.email, p.team, row_number() OVER (ORDER BY t.ts, t.request_id) AS n, count(*) OVER () AS total
    FROM world_token_usage t
    JOIN session_ids s ON s.session_id = t.session_id AND s.gateway
    JOIN people_ids p ON p.user_id = t.user_id
    LEFT JOIN models m ON m.model = t.model
),
rows AS (
    SELECT ts, 'chatcmpl-' || uuid_of('request:' || request_id) AS request_id, email, team, vendor_session_id,
           vendor_model, input_tokens + cache_read_tokens + cache_write_tokens AS prompt_tokens,
           output_tokens AS completion_tokens, cost_usd AS spend, 'success' AS status,
           json_object('user_api_key_user_id', email, 'user_api_key_team_alias', team,
                       'additional_usage_values',
                       CASE WHEN starts_with(vendor_model, 'claude')
                            THEN json_object('cache_creation_input_tokens', cache_write_tokens,
                                             'cache_read_input_tokens', cache_read_tokens,
                                             'prompt_tokens_details', json_object('cached_tokens', cache_read_tokens))
                            ELSE json_object('prompt_tokens_details', json_object('cached_tokens', cache_read_tokens,
                                                                                  'audio_tokens', 0)) END) AS metadata
    FROM calls
    UNION ALL
    SELECT ts - INTERVAL 2 SECOND, 'chatcmpl-' || uuid_of('failed:' || request_id), email, team, vendor_session_id,
           vendor_model, 0, 0, 0.0, 'failure',
           json_object('user_api_key_user_id', email, 'user_api_key_team_alias', team,
                       'error_information', json_object('error_code', '429', 'error_class', 'RateLimitError',
                                                        'llm_provider', 'anthropic'))
    FROM calls
    WHERE {failed_calls} > 0 AND n % greatest(total // ({failed_calls} + 1), 1) = 0
      AND n // greatest(total // ({failed_calls} + 1), 1) <= {failed_calls}
)
SELECT CAST(ts AS DATE) AS file_day, ts, request_id, email AS "user", NULL::VARCHAR AS end_user,
       vendor_session_id AS session_id, vendor_model AS model, vendor_model AS model_group, prompt_tokens,
       completion_tokens, spend, strftime(ts, '%Y-%m-%d %H:%M:%S.%g') AS "startTime",
       uuid_of('team:' || team) AS team_id, status, CAST(metadata AS VARCHAR) AS metadata
FROM rows
"""

# settings
SPEND_COLUMNS = ("request_id", "user", "end_user", "session_id", "model", "model_group", "prompt_tokens",
                 "completion_tokens", "spend", "startTime", "team_id", "status", "metadata")
CLAUDE_CODE_VERSION = "2.0.14"
MACROS = f"""
CREATE OR REPLACE TEMP MACRO kv(k, v) AS {{'key': k, 'value': {{'stringValue': CAST(v AS VARCHAR)}}}};
CREATE OR REPLACE TEMP MACRO present(l) AS list_filter(l, lambda a: a.value.stringValue IS NOT NULL);
CREATE OR REPLACE TEMP MACRO nanos(t) AS CAST(epoch_ns(t) AS VARCHAR);
CREATE OR REPLACE TEMP MACRO iso_ms(t) AS strftime(t, '%Y-%m-%dT%H:%M:%S.%gZ');
CREATE OR REPLACE TEMP MACRO resource_attributes(repo) AS present([
    kv('service.name', 'claude-code'), kv('service.version', '{CLAUDE_CODE_VERSION}'), kv('os.type', 'linux'),
    kv('host.arch', 'amd64'), kv('repo', repo)]);
CREATE OR REPLACE TEMP MACRO claude_code_version() AS '{CLAUDE_CODE_VERSION}';
CREATE OR REPLACE TEMP MACRO tool_names() AS ['Read', 'Grep', 'Edit', 'Bash', 'Glob', 'Write'];
CREATE OR REPLACE TEMP TABLE metric_descriptions AS SELECT * FROM (VALUES
    ('claude_code.session.count', 'Count of CLI sessions started', 'count'),
    ('claude_code.lines_of_code.count', 'Count of lines of code modified', 'count'),
    ('claude_code.commit.count', 'Number of git commits created', 'count')) t(metric, description, unit);
"""
