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

from pipeline import readers
from pipeline.sources import base


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
    damage = _register_json_values(con, path, "values")
    con.execute(UNWRAP_PAGES_SQL)
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


def _register_json_values(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> str | None:
    """Temp table `table` (position, record, line, reason) of the file's top-level JSON values, like
    `base.register_json_records`, but also for objects written one after another over several lines
    (pretty-printed API pages). Arrays, and files that are no clean sequence of JSON values
    (a malformed line, a damaged gzip), go to `base.register_json_records`. Returns its damage."""
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {table}_top AS
            SELECT row_number() OVER () AS position, json AS v
            FROM read_json_objects({readers.sql_literal(readers.glob_literal(str(path)))}, format = 'unstructured',
                                   maximum_object_size = {base.MAX_JSON_BYTES})
            """
        )
    except duckdb.Error:
        return base.register_json_records(con, path, table)
    if con.sql(f"SELECT count(*) FROM {table}_top WHERE json_type(v) = 'ARRAY'").fetchall()[0][0]:
        return base.register_json_records(con, path, table)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT position, CASE WHEN json_type(v) = 'OBJECT' THEN v END AS record, CAST(v AS VARCHAR) AS line,
               CASE WHEN json_type(v) <> 'OBJECT' THEN 'not a JSON object' END AS reason
        FROM {table}_top
        """
    )
    return None


def quote(name: str) -> str:
    return readers.quote_ident(name)


# A page of the proxy's spend logs API (`data` and no `request_id`) stands for the records in its
# `data`; positions count records, pages' and loose ones alike, in file order.
UNWRAP_PAGES_SQL = """
CREATE OR REPLACE TEMP TABLE records AS
WITH given AS (
    SELECT *, coalesce(json_exists(record, '$.data') AND NOT json_exists(record, '$.request_id'), false) AS is_page,
           json_type(record -> '$.data') = 'ARRAY' AS has_rows
    FROM "values"
),
pieces AS (
    SELECT position AS outer_position, 0 AS i, record, line,
           coalesce(reason, CASE WHEN is_page THEN 'malformed page: data is not a JSON array' END) AS reason
    FROM given WHERE NOT (is_page AND has_rows)
    UNION ALL
    SELECT outer_position, e.i, CASE WHEN json_type(e.v) = 'OBJECT' THEN e.v END, CAST(e.v AS VARCHAR),
           CASE WHEN json_type(e.v) <> 'OBJECT' THEN 'not a JSON object' END
    FROM (SELECT position AS outer_position, unnest(enumerate_list(json_extract(record, '$.data[*]'))) AS e
          FROM given WHERE is_page AND has_rows)
)
SELECT row_number() OVER (ORDER BY outer_position, i) AS position,
       CASE WHEN reason IS NULL THEN record END AS record, line, reason
FROM pieces
"""

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
