"""OpenTelemetry GenAI spans, as the OpenTelemetry Collector's `file` exporter writes traces.

Each line is one OTLP/JSON ExportTraceServiceRequest:
    {"resourceSpans": [{"resource": {"attributes": [...]},
                        "scopeSpans": [{"scope": {...}, "spans": [{"traceId": "...", "spanId": "...", "parentSpanId": "...",
                                                                   "name": "chat gpt-4o", "kind": 3, "startTimeUnixNano": "...",
                                                                   "attributes": [...], "status": {"code": 2}}]}]}]}
Spans follow the OpenTelemetry GenAI semantic conventions (any instrumented agent or SDK; GitHub
Copilot's CLI and VS Code export them too). Attribute values are read whatever their OTLP type;
a span attribute wins over a resource attribute of the same key.

Which spans count (see docs/sources.md): one token_usage row per model call, i.e. per span whose
`gen_ai.operation.name` is chat, text_completion, generate_content or embeddings. An agent span
(`invoke_agent`) may carry usage too, but it is the sum of its model calls' (Copilot's is): it
is never counted, so nothing is counted twice. A top-level `invoke_agent` span (no invoke_agent
above it in the file) is one invocations row: the request a person (or a script) sent the agent.

token_usage: request_id (gen_ai.response.id, else `<traceId>:<spanId>`), ts (startTimeUnixNano),
    user_id (user.id, enduser.id, user.email, user.name; else the nearest span above it in the
    file that names one), session_id (gen_ai.conversation.id, else session.id; else inherited the
    same way), model (gen_ai.request.model, else gen_ai.response.model), input_tokens
    (gen_ai.usage.input_tokens less the cache reads and writes the conventions count inside it; kept
    whole when it is smaller than them: the instrumentation reported the provider's uncached count),
    output_tokens (gen_ai.usage.output_tokens; 0 for embeddings, which produce none),
    cache_read_tokens (gen_ai.usage.cache_read.input_tokens), cache_write_tokens
    (gen_ai.usage.cache_creation.input_tokens), no cost (priced from the price table), tool
    (service.name). The deprecated gen_ai.usage.prompt_tokens / completion_tokens are read when the
    new names are absent.
invocations: invocation_id `<traceId>:<spanId>`, ts, user_id, session_id (as above), repo (`repo`,
    else OWNER/REPO of github.copilot.git.repository, copilot_chat.repo.remote_url or
    vcs.repository.url.full, else vcs.repository.name), tool_calls (execute_tool spans below it in
    the file).

Rejected here (dataset token_usage): `malformed JSON`, `not a JSON object`, `not an OTLP traces
export` (a line without resourceSpans), `not a GenAI span: NAME` (no gen_ai.operation.name), a
model call that ended in error `failed call (error.type TYPE)` or `failed call (status error)`,
and a span of an operation not known here that carries token usage `unknown GenAI operation with
token usage: OP` (not counted, so not silently dropped). Other GenAI spans (execute_tool,
create_agent, retrieval, invoke_workflow, a nested invoke_agent, ...) carry no contract row and
are skipped. A missing user, session or token count reaches the loader as NULL and is rejected
there with its reason.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.ingest import fingerprint, readers
from pipeline.ingest.sources import base
from pipeline.ingest.sources.claude_code_otel import ATTRIBUTES_SCHEMA, VALUE_SQL


def read_otel_genai(path: Path) -> base.SourceRows:
    """token_usage and invocations rows from one Collector file-exporter file of traces."""
    with base.connect() as con:
        damage = base.register_lines(con, path, "lines")
        con.execute(MACROS)
        con.execute(_units_sql())
        con.execute(_spans_sql())
        con.execute(_tree_sql())
        rejects = pl.concat([
            base.rejects_of(con, _rejects_sql(), PRIMARY),
            base.damage_reject(con, PRIMARY, "SELECT max(position) FROM units", damage),
        ])
        return base.SourceRows(
            rows={"token_usage": base.frame(con, TOKEN_USAGE_SQL), "invocations": base.frame(con, INVOCATIONS_SQL)},
            rejects=rejects,
        )


# --- helpers: SQL over the lines, one step per temp table --------------------------------

def _units_sql() -> str:
    """Every span (each line parsed once) with its position and resource; a bad line is one unit."""
    return f"""
CREATE OR REPLACE TEMP TABLE otlp_lines AS
SELECT line_no, line, kind, CASE WHEN kind = 'ok' THEN json_exists(line, '$.resourceSpans') ELSE false END AS has_spans
FROM lines;

{base.otlp_resources_sql("resource_spans", "resourceSpans", "scopeSpans", "spans", SPAN_SCHEMA, ATTRIBUTES_SCHEMA,
                         resource="rs", where="has_spans")}

{base.numbered_items_sql("raw_spans", "resource_spans",
                         "flatten(list_transform(coalesce(rs.scopeSpans, []), lambda s: coalesce(s.spans, [])))",
                         index="si", item="span")}

-- positions: a line's spans (or the line itself when bad) follow the earlier lines'
CREATE OR REPLACE TEMP TABLE blocks AS
WITH sized AS (
    SELECT line_no, ri, count(*) AS n FROM raw_spans GROUP BY ALL
    UNION ALL
    SELECT line_no, 0, 1 FROM otlp_lines WHERE NOT has_spans
)
SELECT line_no, ri, sum(n) OVER (ORDER BY line_no, ri ROWS UNBOUNDED PRECEDING) - n AS before FROM sized;

CREATE OR REPLACE TEMP TABLE units AS
SELECT b.before + s.si AS position, s.line_no, s.ri, s.span, NULL AS reason, NULL AS line
FROM raw_spans s JOIN blocks b USING (line_no, ri)
UNION ALL
SELECT b.before + 1, l.line_no, 0, NULL, CASE WHEN l.kind = 'ok' THEN 'not an OTLP traces export' ELSE l.kind END,
       rtrim(l.line, chr(13) || chr(10))
FROM otlp_lines l JOIN blocks b ON b.line_no = l.line_no AND b.ri = 0
WHERE NOT l.has_spans;
"""


def _spans_sql() -> str:
    """One row per span: its ids, operation, the attributes the mapping reads (span over resource
    for identity, session, service and repository; span only for the call's own values)."""
    pivot = ",\n        ".join(f"any_value(v) FILTER (WHERE k = '{key}') AS \"{key}\"" for key in ATTRIBUTES)
    picked = ",\n        ".join(
        f'coalesce(r."{key}", s."{key}") AS "{key}"' if key in RESOURCE_FALLBACK else f'r."{key}"' for key in ATTRIBUTES
    )
    users = ", ".join(f'"{k}"' for k in USER_ATTRIBUTES)
    urls = ", ".join(f'nullif(regexp_extract("{k}", {REPO_FROM_URL}, 1), \'\')' for k in REPO_URL_ATTRIBUTES)
    model_calls = "[" + ", ".join(readers.sql_literal(op) for op in MODEL_CALLS) + "]"
    known = "[" + ", ".join(readers.sql_literal(op) for op in (*MODEL_CALLS, *OTHER_OPERATIONS)) + "]"
    usage = " OR ".join(f'"{k}" IS NOT NULL' for k in USAGE_ATTRIBUTES)
    raw_fields = ", ".join(f"{{'k': '{k}', 'v': \"{k}\"}}" for k in RAW_ATTRIBUTES)
    return f"""
CREATE OR REPLACE TEMP TABLE span_attrs AS
SELECT position, {pivot}
FROM (SELECT position, a.key AS k, {VALUE_SQL} AS v
      FROM (SELECT position, unnest(coalesce(span.attributes, [NULL])) AS a FROM units WHERE reason IS NULL))
GROUP BY position;

CREATE OR REPLACE TEMP TABLE resource_attrs AS
SELECT line_no, ri, {pivot}
FROM (SELECT line_no, ri, a.key AS k, {VALUE_SQL} AS v
      FROM (SELECT line_no, ri, unnest(coalesce(rs.resource.attributes, [NULL])) AS a FROM resource_spans))
GROUP BY line_no, ri;

CREATE OR REPLACE TEMP TABLE spans AS
WITH attrs AS (
    SELECT u.position, u.span,
        {picked}
    FROM units u
    JOIN span_attrs r USING (position)
    LEFT JOIN resource_attrs s USING (line_no, ri)
    WHERE u.reason IS NULL
)
SELECT position,
       lower(nullif(trim(span.traceId), '')) AS trace_id, lower(nullif(trim(span.spanId), '')) AS span_id,
       lower(nullif(trim(span.parentSpanId), '')) AS parent_id, span.name AS name,
       span.startTimeUnixNano AS start_nanos,
       lower(trim("gen_ai.operation.name")) AS operation,
       list_contains({model_calls}, lower(trim("gen_ai.operation.name"))) AS model_call,
       NOT list_contains({known}, lower(trim("gen_ai.operation.name"))) AND ({usage}) AS unknown_with_usage,
       coalesce(span.status.code IN ('2', 'STATUS_CODE_ERROR'), false) OR "error.type" IS NOT NULL AS failed,
       "error.type" AS error_type,
       coalesce({users}) AS own_user,
       coalesce("gen_ai.conversation.id", "session.id") AS own_session,
       "gen_ai.response.id" AS response_id,
       coalesce("gen_ai.request.model", "gen_ai.response.model") AS model,
       coalesce("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens") AS given_input,
       coalesce("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                CASE WHEN lower(trim("gen_ai.operation.name")) = 'embeddings' THEN '0' END) AS output_tokens,
       "gen_ai.usage.cache_read.input_tokens" AS cache_read_tokens,
       "gen_ai.usage.cache_creation.input_tokens" AS cache_write_tokens,
       coalesce("service.name", {readers.sql_literal(DEFAULT_TOOL)}) AS tool,
       coalesce("repo", {urls}, "vcs.repository.name") AS repo,
       -- the span as rejected_rows shows it: its ids and the attributes read (never message content), nulls left out
       CAST(to_json(map_from_entries(list_filter([
           {{'k': 'trace_id', 'v': span.traceId}}, {{'k': 'span_id', 'v': span.spanId}},
           {{'k': 'parent_span_id', 'v': span.parentSpanId}}, {{'k': 'name', 'v': span.name}},
           {{'k': 'start_time_unix_nano', 'v': span.startTimeUnixNano}}, {{'k': 'status_code', 'v': span.status.code}},
           {raw_fields}], lambda e: e.v IS NOT NULL AND e.v <> ''))) AS VARCHAR) AS raw
FROM attrs;
"""


def _tree_sql() -> str:
    """The spans above each span in the file (its ancestors, nearest first), the identity and
    session each span inherits from them, and the top-level agent spans with their tool calls."""
    return f"""
CREATE OR REPLACE TEMP TABLE tree AS  -- one row per span id (a span delivered twice: its first copy)
SELECT trace_id, span_id, arg_min(parent_id, position) AS parent_id, min(position) AS position
FROM spans WHERE trace_id IS NOT NULL AND span_id IS NOT NULL GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE ancestors AS
WITH RECURSIVE up(position, trace_id, ancestor_id, depth) AS (
    SELECT position, trace_id, parent_id, 1 FROM spans WHERE trace_id IS NOT NULL AND parent_id IS NOT NULL
    UNION ALL
    SELECT up.position, up.trace_id, t.parent_id, up.depth + 1
    FROM up JOIN tree t ON t.trace_id = up.trace_id AND t.span_id = up.ancestor_id
    WHERE t.parent_id IS NOT NULL AND up.depth < {MAX_DEPTH}
)
SELECT up.position, up.depth, a.position AS ancestor_position, a.operation, a.own_user, a.own_session
FROM up JOIN tree t ON t.trace_id = up.trace_id AND t.span_id = up.ancestor_id
JOIN spans a ON a.position = t.position;

CREATE OR REPLACE TEMP TABLE resolved AS
WITH inherited AS (
    SELECT position,
           arg_min(own_user, depth) FILTER (WHERE own_user IS NOT NULL) AS user_above,
           arg_min(own_session, depth) FILTER (WHERE own_session IS NOT NULL) AS session_above,
           bool_or(operation = 'invoke_agent') AS under_agent
    FROM ancestors GROUP BY position
)
SELECT s.*, coalesce(s.own_user, i.user_above) AS user_id, coalesce(s.own_session, i.session_above) AS session_id,
       coalesce(s.operation = 'invoke_agent' AND NOT coalesce(i.under_agent, false), false) AS top_agent
FROM spans s LEFT JOIN inherited i USING (position);

CREATE OR REPLACE TEMP TABLE tool_calls AS  -- execute_tool spans below each top-level agent span
SELECT a.ancestor_position AS agent_position, count(*) AS n
FROM spans s
JOIN ancestors a ON a.position = s.position
JOIN resolved r ON r.position = a.ancestor_position AND r.top_agent
WHERE s.operation = 'execute_tool'
GROUP BY ALL;
"""


def _rejects_sql() -> str:
    """The lines and spans no row comes from, with their reasons."""
    markers = " OR ".join(f"contains(line, {readers.sql_literal(m)})" for m in CONTENT_ATTRIBUTES)
    return f"""
SELECT position,
       -- a bad line may hold captured prompts or responses: then only its fingerprint
       CASE WHEN {markers} THEN {fingerprint.withheld_sql('record may hold prompt text', 'line')}
            ELSE line END AS raw,
       reason
FROM units WHERE reason IS NOT NULL
UNION ALL
SELECT position, raw,
       CASE WHEN operation IS NULL OR operation = '' THEN 'not a GenAI span: ' || left(coalesce(name, '(no name)'), 60)
            WHEN model_call THEN 'failed call (' || CASE WHEN error_type IS NOT NULL THEN 'error.type ' || left(error_type, 60)
                                                         ELSE 'status error' END || ')'
            ELSE 'unknown GenAI operation with token usage: ' || left(operation, 60) END
FROM resolved
WHERE operation IS NULL OR operation = '' OR (model_call AND failed) OR unknown_with_usage
ORDER BY position
"""

TOKEN_USAGE_SQL = """
WITH counted AS (
    SELECT *, whole_count(given_input) AS p, coalesce(whole_count(cache_read_tokens), 0) AS r,
           coalesce(whole_count(cache_write_tokens), 0) AS w
    FROM resolved WHERE model_call AND NOT failed
)
SELECT position AS __position, raw AS __raw,
       coalesce(response_id, trace_id || ':' || span_id) AS request_id, iso_from_nanos(start_nanos) AS ts,
       user_id, session_id, model,
       -- the conventions count cache reads and writes inside input_tokens; an instrumentation that
       -- passed on a provider's uncached count (Anthropic's) reports less than the cache: kept as is
       CASE WHEN p IS NULL THEN given_input WHEN p - r - w >= 0 THEN CAST(p - r - w AS VARCHAR) ELSE CAST(p AS VARCHAR) END
           AS input_tokens,
       output_tokens, cache_read_tokens, cache_write_tokens, tool
FROM counted
ORDER BY position
"""

INVOCATIONS_SQL = """
SELECT r.position AS __position, r.raw AS __raw, r.trace_id || ':' || r.span_id AS invocation_id,
       iso_from_nanos(r.start_nanos) AS ts, r.user_id, r.session_id, r.repo, CAST(coalesce(t.n, 0) AS VARCHAR) AS tool_calls
FROM resolved r LEFT JOIN tool_calls t ON t.agent_position = r.position
WHERE r.top_agent
ORDER BY r.position
"""

MACROS = """
-- a token count as a BIGINT when it is a whole number ("12", 12.0, "1e3"), else NULL
CREATE OR REPLACE TEMP MACRO whole_count(x) AS CASE WHEN TRY_CAST(x AS DOUBLE) = round(TRY_CAST(x AS DOUBLE))
                                                    THEN TRY_CAST(TRY_CAST(x AS DOUBLE) AS BIGINT) END;
"""

# settings
PRIMARY = "token_usage"  # the dataset a span or line no row came from is rejected under
DEFAULT_TOOL = "otel-genai"  # tool of a span whose resource has no service.name
MAX_DEPTH = 64  # spans followed upwards from a span (guards against a parent cycle in bad data)
# gen_ai.operation.name values that are one call to a model (the conventions' inference and embeddings spans)
MODEL_CALLS = ("chat", "text_completion", "generate_content", "embeddings")
# well-known operations that are no model call: skipped (invoke_agent: counted through its model calls);
# execute_hook is Copilot's
OTHER_OPERATIONS = ("invoke_agent", "create_agent", "execute_tool", "invoke_workflow", "retrieval", "execute_hook")
USER_ATTRIBUTES = ("user.id", "enduser.id", "user.email", "user.name")  # the first present names the person
REPO_URL_ATTRIBUTES = ("github.copilot.git.repository", "copilot_chat.repo.remote_url", "vcs.repository.url.full")
# OWNER/REPO: the last two path components of a remote URL, `.git` dropped (https://h/o/r.git, git@h:o/r.git)
REPO_FROM_URL = readers.sql_literal(r"([^/:]+/[^/]+?)(?:\.git)?/*$")
USAGE_ATTRIBUTES = ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens",
                    "gen_ai.usage.completion_tokens")
# attributes a resource may carry for all its spans (OTEL_RESOURCE_ATTRIBUTES, service.name)
RESOURCE_FALLBACK = frozenset({*USER_ATTRIBUTES, "gen_ai.conversation.id", "session.id", "service.name", "repo",
                               *REPO_URL_ATTRIBUTES, "vcs.repository.name"})
ATTRIBUTES = tuple(dict.fromkeys((  # every attribute the mapping reads (never message content)
    "gen_ai.operation.name", "gen_ai.conversation.id", "session.id", *USER_ATTRIBUTES, "gen_ai.request.model",
    "gen_ai.response.model", "gen_ai.response.id", "gen_ai.provider.name", "gen_ai.system",
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens",
    "error.type", "service.name", "gen_ai.agent.name", "repo", *REPO_URL_ATTRIBUTES, "vcs.repository.name",
)))
RAW_ATTRIBUTES = ATTRIBUTES  # what rejected_rows shows of a span: the attributes read, no content
# content attributes (opt-in capture): a bad line naming one is withheld from rejected_rows
CONTENT_ATTRIBUTES = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "gen_ai.prompt",
                      "gen_ai.completion", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result")
SPAN_SCHEMA = ('{"traceId": "VARCHAR", "spanId": "VARCHAR", "parentSpanId": "VARCHAR", "name": "VARCHAR", '
               '"startTimeUnixNano": "VARCHAR", '
               f'"attributes": {ATTRIBUTES_SCHEMA}, "status": {{"code": "VARCHAR", "message": "VARCHAR"}}}}')
