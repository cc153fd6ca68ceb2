"""Claude Code OpenTelemetry events, as the OpenTelemetry Collector's `file` exporter writes logs.

Each line is one OTLP/JSON ExportLogsServiceRequest:
    {"resourceLogs": [{"resource": {"attributes": [...]},
                       "scopeLogs": [{"logRecords": [{"timeUnixNano": "...", "body": {"stringValue": "claude_code.api_request"},
                                                      "attributes": [{"key": "event.name", "value": {"stringValue": "api_request"}}, ...]}]}]}]}
Attribute values are typed OTLP values ({"stringValue"}, {"intValue"} (a string in OTLP/JSON),
{"doubleValue"}, {"boolValue"}); numbers may also arrive as strings. A record attribute wins over
a resource attribute of the same key (resource attributes carry e.g. OTEL_RESOURCE_ATTRIBUTES).

Mapping (positions are log-record numbers in file order; a malformed line counts as one record):
    claude_code.api_request -> token_usage: request_id (the `request_id` attribute, else a stable id
        from the record), ts (event.timestamp, else timeUnixNano), user_id (user.email, else
        user.account_uuid, else user.id), session_id (session.id), model, input_tokens,
        output_tokens, cache_read_tokens, cache_creation_tokens -> cache_write_tokens, cost_usd,
        tool 'claude-code'.
    claude_code.user_prompt -> invocations: invocation_id (prompt.id, else a stable id), ts, user_id,
        session_id, prompt_text (the `prompt` attribute when OTEL_LOG_USER_PROMPTS=1; fingerprinted
        by the loader, never stored), prompt_length, repo (`repo` or `vcs.repository.name`, set via
        OTEL_RESOURCE_ATTRIBUTES), tool_calls (tool_result events of the same prompt.id in the file; 0
        when none, unknown for a prompt without prompt.id).
    claude_code.tool_result carrying a git commit id (attribute `git_commit_id`, `commit_sha` or
        `vcs.ref.head.revision`, or the same key inside the `tool_parameters` JSON) -> the commit_sha
        of its prompt's invocations row (same prompt.id; without prompt.id, the session's latest
        prompt at or before it). A commit whose prompt is not in the file, or a prompt's second
        commit, becomes an invocations row of its own (commit_sha set, no prompt).
    Other claude_code.* events (tool_decision, api_error, tool_result without a commit, ...) carry
        no contract data and are skipped. A record that is no Claude Code event is rejected.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.ingest import fingerprint
from pipeline.ingest.sources import base


def read_claude_code_otel(path: Path) -> base.SourceRows:
    """token_usage and invocations rows from one Collector file-exporter file (logs and metrics lines)."""
    with base.connect() as con:
        damage = base.register_lines(con, path, "lines")
        con.execute(_records_sql())
        con.execute(_events_sql())
        con.execute(_points_sql())
        rejects = pl.concat([
            base.rejects_of(con, _rejects_sql(), PRIMARY),
            base.rejects_of(con, POINT_REJECTS_SQL, METRICS_DATASET),
            base.damage_reject(con, PRIMARY, "SELECT max(position) FROM (SELECT position FROM units "
                                             "UNION ALL SELECT position FROM point_units)", damage),
        ]).sort("position")
        con.execute(PROMPTS_SQL)
        con.execute(LINES_SQL)
        return base.SourceRows(
            rows={
                "token_usage": base.frame(con, TOKEN_USAGE_SQL),
                "invocations": base.frame(con, INVOCATIONS_SQL),
            },
            rejects=rejects,
        )


# --- helpers: SQL over the lines, one step per temp table --------------------------------

def _records_sql() -> str:
    """Every log record (each line parsed once, typed) and its resource; a bad line is one unit on its own."""
    return f"""
CREATE OR REPLACE TEMP TABLE otlp_lines AS
SELECT line_no, line, kind,
       CASE WHEN kind = 'ok' THEN json_exists(line, '$.resourceLogs') ELSE false END AS has_logs,
       CASE WHEN kind = 'ok' THEN json_exists(line, '$.resourceMetrics') ELSE false END AS has_metrics
FROM lines;

{base.otlp_resources_sql("resource_logs", "resourceLogs", "scopeLogs", "logRecords", RECORD_SCHEMA, ATTRIBUTES_SCHEMA,
                         resource="rl", where="has_logs")}

{base.numbered_items_sql("records", "resource_logs", "flatten(list_transform(rl.scopeLogs, lambda s: s.logRecords))",
                         index="li", item="rec")}

{base.otlp_resources_sql("resource_metrics", "resourceMetrics", "scopeMetrics", "metrics", METRIC_SCHEMA,
                         ATTRIBUTES_SCHEMA, resource="rm", where="has_metrics")}

-- every data point of a sum metric, with its metric's name and temporality
{base.numbered_items_sql("points", "resource_metrics", POINTS_OF_METRICS, index="pi", item="pt")}

-- positions: a line's units (its log records, then its sum data points, or the line itself when bad)
-- follow the earlier lines'
CREATE OR REPLACE TEMP TABLE blocks AS
WITH sized AS (
    SELECT line_no, 0 AS sig, ri, count(*) AS n FROM records GROUP BY ALL
    UNION ALL
    SELECT line_no, 1, ri, count(*) FROM points GROUP BY ALL
    UNION ALL
    SELECT line_no, 0, 0, 1 FROM otlp_lines WHERE NOT has_logs AND NOT has_metrics
)
SELECT line_no, sig, ri, sum(n) OVER (ORDER BY line_no, sig, ri ROWS UNBOUNDED PRECEDING) - n AS before FROM sized;

CREATE OR REPLACE TEMP TABLE units AS
SELECT b.before + r.li AS position, r.line_no, r.ri, r.rec, NULL AS reason, NULL AS line
FROM records r JOIN blocks b ON b.line_no = r.line_no AND b.sig = 0 AND b.ri = r.ri
UNION ALL
SELECT b.before + 1, l.line_no, 0, NULL, CASE WHEN l.kind = 'ok' THEN 'not an OTLP logs or metrics export' ELSE l.kind END,
       rtrim(l.line, chr(13) || chr(10))
FROM otlp_lines l JOIN blocks b ON b.line_no = l.line_no AND b.sig = 0 AND b.ri = 0
WHERE NOT l.has_logs AND NOT l.has_metrics;

CREATE OR REPLACE TEMP TABLE point_units AS
SELECT b.before + p.pi AS position, p.line_no, p.ri, p.pt
FROM points p JOIN blocks b ON b.line_no = p.line_no AND b.sig = 1 AND b.ri = p.ri;
"""


def _events_sql() -> str:
    """One row per log record: its event and the attributes the mapping reads (record attributes
    over resource attributes), pivoted from one long table of attributes."""
    value = VALUE_SQL
    pivot = ",\n        ".join(f"any_value(v) FILTER (WHERE k = '{key}') AS \"{key}\"" for key in ATTRIBUTES)
    picked = ",\n        ".join(f'coalesce(r."{key}", s."{key}") AS "{key}"' for key in ATTRIBUTES)
    commit = ", ".join(
        [f'"{k}"' for k in COMMIT_ATTRIBUTES]
        + [f"json_extract_string(CASE WHEN json_valid(tool_parameters) THEN tool_parameters END, '$.{k}')"
           for k in COMMIT_PARAMETERS]
    )
    users = ", ".join(f'"{k}"' for k in USER_ATTRIBUTES)
    repos = ", ".join(f'"{k}"' for k in REPO_ATTRIBUTES)
    derived_id = base.stable_id_sql("cc-", 'coalesce(body, "event.name")', *(f'"{k}"' for k in ID_ATTRIBUTES), "time_nanos")
    raw_fields = ", ".join(
        f"'{k}', " + (fingerprint.unkeyed_sql(f'"{k}"') if k == "prompt" else f'"{k}"')
        for k in ATTRIBUTES if k not in ("event.name", "tool_parameters")
    )
    return f"""
CREATE OR REPLACE TEMP TABLE record_attrs AS
SELECT position, any_value(body) AS body, any_value(time_nanos) AS time_nanos, any_value(observed_nanos) AS observed_nanos,
        {pivot}
FROM (SELECT position, rec.body.stringValue AS body, rec.timeUnixNano AS time_nanos,
             rec.observedTimeUnixNano AS observed_nanos, a.key AS k, {value} AS v
      FROM (SELECT position, rec, unnest(coalesce(rec.attributes, [NULL])) AS a FROM units WHERE reason IS NULL))
GROUP BY position;

CREATE OR REPLACE TEMP TABLE resource_attrs AS
SELECT line_no, ri,
        {pivot}
FROM (SELECT line_no, ri, a.key AS k, {value} AS v
      FROM (SELECT line_no, ri, unnest(rl.resource.attributes) AS a FROM resource_logs))
GROUP BY line_no, ri;

CREATE OR REPLACE TEMP TABLE events AS
WITH attrs AS (
    SELECT u.position, r.body, r.time_nanos, r.observed_nanos,
        {picked}
    FROM units u
    JOIN record_attrs r USING (position)
    LEFT JOIN resource_attrs s USING (line_no, ri)
),
read AS (
    SELECT
        position,
        CASE WHEN body LIKE 'claude_code.%' THEN body
             WHEN "event.name" LIKE 'claude_code.%' THEN "event.name"
             WHEN "event.name" IS NOT NULL AND NOT contains("event.name", '.') THEN 'claude_code.' || "event.name"
        END AS event,
        coalesce(body, "event.name") AS given_name,
        "session.id" AS session_id,
        coalesce({users}) AS user_id,
        coalesce("event.timestamp", iso_from_nanos(time_nanos), iso_from_nanos(observed_nanos)) AS ts,
        "prompt.id" AS prompt_id,
        request_id, model, input_tokens, output_tokens, cache_read_tokens,
        cache_creation_tokens AS cache_write_tokens, cost_usd,
        nullif(prompt, '<REDACTED>') AS prompt_text,
        prompt_length,
        coalesce({repos}, {WORKSPACE_REPO_SQL}) AS repo,
        lower(coalesce({commit})) AS commit_sha,
        {derived_id} AS derived_id,
        CAST(json_object('event', coalesce(body, "event.name"), 'time_unix_nano', time_nanos,
                         {raw_fields})
             AS VARCHAR) AS raw
    FROM attrs
)
SELECT *, TRY_CAST(ts AS TIMESTAMPTZ) AS ts_parsed,
       regexp_full_match(coalesce(commit_sha, ''), '[0-9a-f]{{7,64}}') AS has_commit
FROM read;
"""


def _points_sql() -> str:
    """One row per sum data point: metric, temporality, the attributes the mapping reads (point
    attributes over resource attributes), its value and its increment (cumulative series differenced)."""
    pivot = ",\n        ".join(f"any_value(v) FILTER (WHERE k = '{key}') AS \"{key}\"" for key in POINT_ATTRIBUTES)
    picked = ",\n        ".join(f'coalesce(r."{key}", s."{key}") AS "{key}"' for key in POINT_ATTRIBUTES)
    users = ", ".join(f'"{k}"' for k in USER_ATTRIBUTES)
    repos = ", ".join(f'"{k}"' for k in REPO_ATTRIBUTES)
    pairs = f"list_sort(list_transform(coalesce({{l}}, []), lambda a: a.key || '=' || coalesce({VALUE_SQL}, '')))"
    return f"""
CREATE OR REPLACE TEMP TABLE point_attrs AS
SELECT position, {pivot}
FROM (SELECT position, a.key AS k, {VALUE_SQL} AS v
      FROM (SELECT position, unnest(coalesce(pt.p.attributes, [NULL])) AS a FROM point_units))
GROUP BY position;

CREATE OR REPLACE TEMP TABLE metric_resource_attrs AS
SELECT line_no, ri, {pivot},
       any_value(series) AS resource_series
FROM (SELECT line_no, ri, a.key AS k, {VALUE_SQL} AS v, series
      FROM (SELECT line_no, ri, unnest(coalesce(rm.resource.attributes, [NULL])) AS a,
                   {pairs.format(l='rm.resource.attributes')} AS series
            FROM resource_metrics))
GROUP BY line_no, ri;

CREATE OR REPLACE TEMP TABLE metric_points AS
WITH read AS (
    SELECT u.position, u.pt.metric AS metric,
           CASE WHEN u.pt.temporality IN ('1', 'AGGREGATION_TEMPORALITY_DELTA') THEN 'delta'
                WHEN u.pt.temporality IN ('2', 'AGGREGATION_TEMPORALITY_CUMULATIVE') THEN 'cumulative' END AS temporality,
           u.pt.p.startTimeUnixNano AS start_nanos, u.pt.p.timeUnixNano AS time_nanos,
           TRY_CAST(coalesce(u.pt.p.asInt, u.pt.p.asDouble) AS DOUBLE) AS value,
           coalesce(u.pt.p.asInt, u.pt.p.asDouble) AS given_value,
           {picked},
           u.pt.metric || '|' || coalesce(u.pt.p.startTimeUnixNano, '') || '|'
               || array_to_string({pairs.format(l='u.pt.p.attributes')}, ',') || '|'
               || array_to_string(coalesce(s.resource_series, []), ',') AS series
    FROM point_units u
    LEFT JOIN point_attrs r USING (position)
    LEFT JOIN metric_resource_attrs s USING (line_no, ri)
)
SELECT position, metric, temporality, time_nanos, value, given_value, series,
       "session.id" AS session_id, coalesce({users}) AS user_id, coalesce({repos}) AS repo, "type" AS type,
       make_timestamp(CAST(TRY_CAST(time_nanos AS HUGEINT) // 1000 AS BIGINT)) AS ts_parsed,
       CASE WHEN temporality = 'delta' THEN value
            -- cumulative: the increment since the series' previous point in the file; a first point
            -- (or a drop, i.e. a reset) counts whole
            ELSE CASE WHEN value >= lag(value) OVER w THEN value - lag(value) OVER w ELSE value END
       END AS increment,
       CAST(json_object('metric', metric, 'time_unix_nano', time_nanos, 'start_time_unix_nano', start_nanos,
                        'aggregation_temporality', temporality, 'value', given_value, 'session.id', "session.id",
                        'user', coalesce({users}), 'type', "type") AS VARCHAR) AS raw
FROM read
WINDOW w AS (PARTITION BY series, value IS NULL ORDER BY TRY_CAST(time_nanos AS HUGEINT), position);
"""


def _rejects_sql() -> str:
    return f"""
SELECT position, {base.withheld_sql('line', '"prompt"')} AS raw, reason
FROM units WHERE reason IS NOT NULL
UNION ALL
SELECT position, raw, 'not a Claude Code event: ' || left(coalesce(given_name, '(no event name)'), 60)
FROM events WHERE event IS NULL
ORDER BY position
"""

# prompts, and each commit-carrying tool_result matched to its prompt
PROMPTS_SQL = """
CREATE OR REPLACE TEMP TABLE prompts AS
SELECT * FROM events WHERE event = 'claude_code.user_prompt';

CREATE OR REPLACE TEMP TABLE commits AS
WITH c AS (SELECT * FROM events WHERE event = 'claude_code.tool_result' AND has_commit),
candidates AS (  -- the prompt of the same prompt.id, else the session's prompts up to the commit
    SELECT c.position, c.commit_sha, c.ts_parsed, p.position AS prompt_position,
           row_number() OVER (PARTITION BY c.position
                              ORDER BY p.ts_parsed <= c.ts_parsed DESC NULLS LAST, p.ts_parsed DESC, p.position DESC) AS pick
    FROM c
    LEFT JOIN prompts p
        ON p.session_id IS NOT DISTINCT FROM c.session_id
        AND CASE WHEN c.prompt_id IS NOT NULL THEN p.prompt_id = c.prompt_id ELSE p.ts_parsed <= c.ts_parsed END
)
SELECT position, commit_sha, prompt_position,
       prompt_position IS NOT NULL
           AND row_number() OVER (PARTITION BY prompt_position ORDER BY ts_parsed, position) = 1 AS attached
FROM candidates
WHERE pick = 1;
"""

# the lines-added data points (with the session they belong to) and where each one lands: the
# session's prompt nearest at or before it, else the session's first prompt, else a row of its own
POINT_REJECTS_SQL = """
SELECT position, raw,
       CASE WHEN metric IS NULL OR NOT starts_with(metric, 'claude_code.')
                THEN 'not a Claude Code metric: ' || left(coalesce(metric, '(no metric name)'), 60)
            WHEN value IS NULL THEN 'not a number: ' || metric
            WHEN temporality IS NULL THEN 'unknown aggregation temporality: ' || metric
            WHEN session_id IS NULL THEN 'no session.id: ' || metric
       END AS reason
FROM metric_points
WHERE metric IS NULL OR NOT starts_with(metric, 'claude_code.')
   OR (metric = 'claude_code.lines_of_code.count' AND (value IS NULL OR temporality IS NULL OR session_id IS NULL))
ORDER BY position
"""

LINES_SQL = """
CREATE OR REPLACE TEMP TABLE metric_sessions AS  -- sessions whose metrics the file holds: no lines means 0 lines
SELECT DISTINCT session_id FROM metric_points WHERE starts_with(metric, 'claude_code.') AND session_id IS NOT NULL;

CREATE OR REPLACE TEMP TABLE lines_points AS
WITH added AS (
    SELECT * FROM metric_points
    WHERE metric = 'claude_code.lines_of_code.count' AND type = 'added' AND value IS NOT NULL AND temporality IS NOT NULL
      AND session_id IS NOT NULL
),
candidates AS (
    SELECT a.position, a.increment, p.position AS prompt_position,
           row_number() OVER (PARTITION BY a.position
                              ORDER BY p.ts_parsed <= a.ts_parsed DESC NULLS LAST,
                                       CASE WHEN p.ts_parsed <= a.ts_parsed THEN p.ts_parsed END DESC NULLS LAST,
                                       p.ts_parsed, p.position) AS pick
    FROM added a LEFT JOIN prompts p ON p.session_id = a.session_id
)
SELECT position, increment, prompt_position FROM candidates WHERE pick = 1;

CREATE OR REPLACE TEMP TABLE prompt_lines AS
SELECT p.position AS prompt_position,
       CASE WHEN p.session_id IN (SELECT session_id FROM metric_sessions)
            THEN CAST(round(coalesce(sum(l.increment), 0)) AS BIGINT) END AS lines_accepted
FROM prompts p LEFT JOIN lines_points l ON l.prompt_position = p.position
GROUP BY p.position, p.session_id;
"""

TOKEN_USAGE_SQL = """
SELECT position AS __position, raw AS __raw, coalesce(request_id, derived_id) AS request_id, ts, user_id,
       session_id, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,
       'claude-code' AS tool
FROM events WHERE event = 'claude_code.api_request'
ORDER BY position
"""

INVOCATIONS_SQL = f"""
WITH tool_calls AS (
    SELECT session_id, prompt_id, count(*) AS n
    FROM events WHERE event = 'claude_code.tool_result' AND prompt_id IS NOT NULL
    GROUP BY ALL
)
SELECT p.position AS __position, p.raw AS __raw, coalesce(p.prompt_id, p.derived_id) AS invocation_id, p.ts,
       p.user_id, p.session_id, p.repo, p.prompt_text, p.prompt_length,
       CAST(l.lines_accepted AS VARCHAR) AS lines_accepted,
       -- a prompt.id correlates its tool_result events: none in the file is 0 calls; without one, unknown
       CAST(CASE WHEN p.prompt_id IS NOT NULL THEN coalesce(t.n, 0) END AS VARCHAR) AS tool_calls, c.commit_sha
FROM prompts p
LEFT JOIN prompt_lines l ON l.prompt_position = p.position
LEFT JOIN commits c ON c.prompt_position = p.position AND c.attached
LEFT JOIN tool_calls t ON t.session_id = p.session_id AND t.prompt_id = p.prompt_id
UNION ALL
SELECT e.position, e.raw, e.derived_id, e.ts, e.user_id, e.session_id, e.repo, NULL, NULL, NULL, NULL, e.commit_sha
FROM commits c JOIN events e USING (position)
WHERE NOT c.attached
UNION ALL  -- lines of a session without a prompt in the file: a row of their own per data point
SELECT m.position, m.raw, {base.stable_id_sql("cc-", "'lines'", "m.series", "m.time_nanos")}, iso_from_nanos(m.time_nanos),
       m.user_id, m.session_id, m.repo, NULL, NULL, CAST(CAST(round(l.increment) AS BIGINT) AS VARCHAR), NULL, NULL
FROM lines_points l JOIN metric_points m USING (position)
WHERE l.prompt_position IS NULL AND l.increment <> 0
ORDER BY 1
"""

# settings
PRIMARY = "token_usage"  # the dataset a record no row came from is rejected under
METRICS_DATASET = "invocations"  # the dataset a metric data point is rejected under (lines feed invocations)
# the first present names the person: the signed-in account (tagged id), its email, its uuid, the install id
USER_ATTRIBUTES = ("user.account_id", "user.email", "user.account_uuid", "user.id")
REPO_ATTRIBUTES = ("repo", "vcs.repository.name")  # set through OTEL_RESOURCE_ATTRIBUTES
COMMIT_ATTRIBUTES = ("git_commit_id", "commit_sha", "vcs.ref.head.revision")
COMMIT_PARAMETERS = ("git_commit_id", "commit_sha")  # keys inside the tool_parameters JSON
ID_ATTRIBUTES = ("session.id", "event.sequence", "event.timestamp", "prompt.id", "model", "input_tokens", "output_tokens",
                 "cache_read_tokens", "cache_creation_tokens", "tool_name", "prompt_length")
ATTRIBUTES = tuple(dict.fromkeys((  # every attribute the mapping reads
    "event.name", "event.timestamp", "event.sequence", "session.id", *USER_ATTRIBUTES, "prompt.id", "request_id", "model",
    "input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "cost_usd", "prompt", "prompt_length",
    *REPO_ATTRIBUTES, *COMMIT_ATTRIBUTES, "tool_parameters", "tool_name", "workspace.host_paths",
)))
POINT_ATTRIBUTES = ("session.id", *USER_ATTRIBUTES, *REPO_ATTRIBUTES, "type")
# an attribute's value as text, whatever its OTLP type (an array: its first element)
VALUE_SQL = ("coalesce(a.value.stringValue, a.value.intValue, a.value.doubleValue, a.value.boolValue, "
             "struct_extract(a.value.arrayValue, 'values')[1].stringValue)")
# the repository named by the first workspace path: its last component ('/src/shop/checkout/' -> 'checkout')
WORKSPACE_REPO_SQL = """nullif(regexp_extract(rtrim("workspace.host_paths", '/\\'), '[^/\\\\]+$'), '')"""
# OTLP/JSON shapes, parsed once per line (a value of another shape reads as NULL)
ATTRIBUTES_SCHEMA = ('[{"key": "VARCHAR", "value": {"stringValue": "VARCHAR", "intValue": "VARCHAR", '
                     '"doubleValue": "VARCHAR", "boolValue": "VARCHAR", "arrayValue": {"values": [{"stringValue": "VARCHAR"}]}}}]')
RECORD_SCHEMA = ('{"timeUnixNano": "VARCHAR", "observedTimeUnixNano": "VARCHAR", "body": {"stringValue": "VARCHAR"}, '
                 f'"attributes": {ATTRIBUTES_SCHEMA}}}')
METRIC_SCHEMA = ('{"name": "VARCHAR", "sum": {"aggregationTemporality": "VARCHAR", "dataPoints": [{'
                 '"startTimeUnixNano": "VARCHAR", "timeUnixNano": "VARCHAR", "asInt": "VARCHAR", "asDouble": "VARCHAR", '
                 f'"attributes": {ATTRIBUTES_SCHEMA}}}]}}}}')
# every data point of every sum metric of a resource (rm), with its metric's name and temporality
POINTS_OF_METRICS = """flatten(list_transform(rm.scopeMetrics, lambda s: flatten(list_transform(s.metrics,
                lambda m: list_transform(coalesce(m.sum.dataPoints, []),
                    lambda p: {'metric': m.name, 'temporality': m.sum.aggregationTemporality, 'p': p})))))"""
