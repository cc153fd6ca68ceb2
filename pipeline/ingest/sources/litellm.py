"""LiteLLM proxy spend logs (the `LiteLLM_SpendLogs` table), exported as CSV or JSON (see docs/sources.md).

Columns read (others, notably `messages`, `response` and `proxy_server_request`, are ignored and
never copied into rejected_rows): request_id, user, end_user, session_id, model, model_group,
prompt_tokens, completion_tokens, spend, startTime, team_id, status, metadata (a JSON object or
JSON text: additional_usage_values, usage_object, status, user_api_key_user_id,
user_api_key_team_alias). JSON files may hold the records themselves (array, JSON lines) or the
proxy API's pages `{"data": [...], "page": ..., "total_pages": ...}` (one or many), unwrapped here.

Rejected here: a failed call (`status`, else `metadata.status`, is set and not 'success'),
`failed call (status <status>)`; a `metadata` that is not a JSON object, `malformed metadata: not a
JSON object`; a page whose `data` is not an array; what is not a JSON object.

Mapping, one token_usage row per other spend log row: request_id, ts (startTime), user_id (user,
else metadata.user_api_key_user_id, else end_user), session_id (session_id, else one synthetic
session per user and UTC day, `litellm:<user>:<day>`), model (model, else model_group),
cache_read_tokens (cache_read_input_tokens, else prompt_tokens_details.cached_tokens; from
metadata.additional_usage_values, else metadata.usage_object), cache_write_tokens
(cache_creation_input_tokens, else prompt_tokens_details.cache_creation_tokens, same places),
input_tokens (prompt_tokens less the cache reads and writes LiteLLM counts inside it; less the reads
only when that would go below 0, never below 0), output_tokens (completion_tokens), cost_usd
(spend), tool 'litellm'.
people (implied): one row per user with a team (metadata.user_api_key_team_alias, else team_id;
the newest loaded row's wins), offered only when the user is not yet a person or an alias: a
people file always has the last word.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from pipeline.ingest import readers
from pipeline.ingest.sources import base


def read_litellm_spend_logs(path: Path) -> base.SourceRows:
    """token_usage (and implied people) rows from one spend-log export, CSV or JSON."""
    with base.connect() as con:
        if readers.strip_compression(path.name.lower()).endswith(".csv"):
            rejects = _register_csv(con, path)
        else:
            rejects = _register_json(con, path)
        con.execute(USAGE_SQL)
        rejects = pl.concat([rejects, base.rejects_of(con, REJECTS_SQL, "token_usage")]).sort("position", maintain_order=True)
        return base.SourceRows(
            {"token_usage": base.frame(con, TOKEN_USAGE_SQL), "people": base.frame(con, PEOPLE_SQL)},
            rejects,
        )


# --- helpers ---------------------------------------------------------------------------


def _register_csv(con: duckdb.DuckDBPyConnection, path: Path) -> pl.DataFrame:
    """Table `logs` (position, the read columns as text, metadata_text, meta JSON) from a CSV export; its rejects."""
    rows = readers.read_file(
        con, readers.InputFile(path, "csv", readers.compression_of(path) is not None),
        view_name="spend_csv", list_fields=frozenset(), json_fields=(), redact=REDACTED,
    )
    try:
        if rows.relation is None:
            con.execute(f"CREATE TEMP TABLE logs AS SELECT {', '.join(f'NULL::VARCHAR AS {quote(c)}' for c in COLUMNS)}, "
                        "NULL::BIGINT AS position, NULL::VARCHAR AS metadata_text, NULL::JSON AS meta WHERE false")
        else:
            picked = ", ".join(f"{quote(c) if c in rows.columns else 'NULL'}::VARCHAR AS {quote(c)}" for c in COLUMNS)
            text = "metadata::VARCHAR" if "metadata" in rows.columns else "NULL::VARCHAR"
            con.execute(f"CREATE TEMP TABLE logs AS SELECT __position AS position, {picked}, {text} AS metadata_text, "
                        f"TRY_CAST({text} AS JSON) AS meta FROM {rows.relation}")
        rejects = pl.from_arrow(rows.rejects)
    finally:
        rows.release()
    return rejects.with_columns(dataset=pl.lit("token_usage")).select(list(base.REJECT_SCHEMA)).cast(base.REJECT_SCHEMA)


def _register_json(con: duckdb.DuckDBPyConnection, path: Path) -> pl.DataFrame:
    """Table `logs` from a JSON export (array, pages or lines); its rejects."""
    damage = base.register_api_records(con, path, "records", "data", "request_id")  # an API page: data, no request_id
    picked = ", ".join(f"json_text(record -> {readers.sql_literal('$.' + readers.json_path_key(c))}) AS {quote(c)}" for c in COLUMNS)
    con.execute(
        f"""
        CREATE TEMP TABLE logs AS
        SELECT position, {picked}, json_text(record -> '$.metadata') AS metadata_text,
               CASE WHEN json_type(record -> '$.metadata') = 'VARCHAR' THEN TRY_CAST(record ->> '$.metadata' AS JSON)
                    ELSE record -> '$.metadata' END AS meta
        FROM records WHERE reason IS NULL
        """
    )
    raw = base.withheld_sql("line", '"messages"')
    return pl.concat([
        base.rejects_of(con, f"SELECT position, {raw} AS raw, reason FROM records WHERE reason IS NOT NULL ORDER BY position",
                        "token_usage"),
        base.damage_reject(con, "token_usage", "SELECT max(position) FROM records", damage),
    ])


def quote(name: str) -> str:
    return readers.quote_ident(name)


# Cached tokens: LiteLLM copies the call's usage (less prompt/completion/total tokens) into
# metadata.additional_usage_values, and newer versions the whole usage into metadata.usage_object:
# the same tokens twice, so the first one found counts, never their sum. Anthropic-style usage names
# them cache_read_input_tokens / cache_creation_input_tokens, OpenAI-style usage
# prompt_tokens_details.cached_tokens (LiteLLM fills both for Anthropic, with the same count).
USAGE_SQL = """
CREATE OR REPLACE TEMP TABLE usage AS
WITH read AS (
    SELECT *,
           coalesce(nullif(trim("user"), ''), meta ->> '$.user_api_key_user_id', nullif(trim(end_user), '')) AS who,
           coalesce(json_text(meta -> '$.additional_usage_values.cache_read_input_tokens'),
                    json_text(meta -> '$.additional_usage_values.prompt_tokens_details.cached_tokens'),
                    json_text(meta -> '$.usage_object.cache_read_input_tokens'),
                    json_text(meta -> '$.usage_object.prompt_tokens_details.cached_tokens')) AS cache_read,
           coalesce(json_text(meta -> '$.additional_usage_values.cache_creation_input_tokens'),
                    json_text(meta -> '$.additional_usage_values.prompt_tokens_details.cache_creation_tokens'),
                    json_text(meta -> '$.usage_object.cache_creation_input_tokens'),
                    json_text(meta -> '$.usage_object.prompt_tokens_details.cache_creation_tokens')) AS cache_write,
           coalesce(meta ->> '$.user_api_key_team_alias', nullif(trim(team_id), '')) AS team,
           -- no status column (older LiteLLM) and none in metadata: a success
           coalesce(nullif(trim(status), ''), nullif(trim(meta ->> '$.status'), '')) AS call_status,
           nullif(trim(metadata_text), '') IS NOT NULL AND coalesce(json_type(meta), '') NOT IN ('OBJECT', 'NULL') AS bad_metadata
    FROM logs
),
counted AS (
    SELECT *, TRY_CAST(prompt_tokens AS BIGINT) AS p,
           coalesce(TRY_CAST(cache_read AS BIGINT), 0) AS r, coalesce(TRY_CAST(cache_write AS BIGINT), 0) AS w
    FROM read
)
SELECT * EXCLUDE (p, r, w),
       -- reads are inside prompt_tokens in every LiteLLM version; writes too, except in versions whose
       -- Anthropic mapping left them out (then prompt_tokens less both may go below 0)
       CASE WHEN p IS NULL THEN prompt_tokens
            WHEN p - r - w >= 0 THEN CAST(p - r - w AS VARCHAR)
            ELSE CAST(greatest(p - r, 0) AS VARCHAR) END AS input_tokens,
       CASE WHEN call_status IS NOT NULL AND lower(call_status) <> 'success' THEN 'failed call (status ' || call_status || ')'
            WHEN bad_metadata THEN 'malformed metadata: not a JSON object' END AS reject_reason,
       CAST(json_object('request_id', request_id, 'user', who, 'session_id', session_id, 'model', coalesce(model, model_group),
                        'prompt_tokens', prompt_tokens, 'completion_tokens', completion_tokens, 'cache_read', cache_read,
                        'cache_write', cache_write, 'spend', spend, 'startTime', "startTime", 'team', team,
                        'status', call_status) AS VARCHAR) AS raw
FROM counted
"""

REJECTS_SQL = "SELECT position, raw, reject_reason AS reason FROM usage WHERE reject_reason IS NOT NULL ORDER BY position"

TOKEN_USAGE_SQL = """
SELECT position AS __position, raw AS __raw, request_id, "startTime" AS ts, who AS user_id,
       coalesce(nullif(trim(session_id), ''), 'litellm:' || who || ':' || strftime(TRY_CAST("startTime" AS TIMESTAMPTZ), '%Y-%m-%d'))
           AS session_id,
       coalesce(nullif(trim(model), ''), model_group) AS model, input_tokens, completion_tokens AS output_tokens,
       cache_read AS cache_read_tokens, cache_write AS cache_write_tokens, spend AS cost_usd, 'litellm' AS tool
FROM usage WHERE reject_reason IS NULL ORDER BY position
"""

PEOPLE_SQL = """
SELECT min(position) AS __position, CAST(json_object('user', who, 'team', arg_max(team, TRY_CAST("startTime" AS TIMESTAMPTZ))) AS VARCHAR) AS __raw,
       who AS user_id, arg_max(team, TRY_CAST("startTime" AS TIMESTAMPTZ)) AS team
FROM usage WHERE who IS NOT NULL AND team IS NOT NULL AND reject_reason IS NULL
GROUP BY who ORDER BY 1
"""

# settings
COLUMNS = ("request_id", "user", "end_user", "session_id", "model", "model_group", "prompt_tokens", "completion_tokens",
           "spend", "startTime", "team_id", "status")
REDACTED = frozenset({"messages", "response", "proxy_server_request"})  # may hold prompt text
