"""LiteLLM proxy spend logs (the `LiteLLM_SpendLogs` table), exported as CSV or JSON (see docs/sources.md).

Columns read (others, notably `messages` and `response`, are ignored and never copied into
rejected_rows): request_id, user, end_user, session_id, model, model_group, prompt_tokens,
completion_tokens, spend, startTime, team_id, metadata (a JSON object or JSON text: usage_object,
user_api_key_user_id, user_api_key_team_alias).

Mapping, one token_usage row per spend log row: request_id, ts (startTime), user_id (user, else
metadata.user_api_key_user_id, else end_user), session_id (session_id, else one synthetic session
per user and UTC day, `litellm:<user>:<day>`), model (model, else model_group), input_tokens
(prompt_tokens less the cached tokens LiteLLM counts inside them, never below 0),
output_tokens (completion_tokens), cache_read_tokens (usage_object.cache_read_input_tokens or
prompt_tokens_details.cached_tokens), cache_write_tokens (usage_object.cache_creation_input_tokens),
cost_usd (spend), tool 'litellm'.
people (implied): one row per user with a team (metadata.user_api_key_team_alias, else team_id;
the newest row's wins), offered only when the user is not yet a person or an alias: a people file
always has the last word.
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
        if path.name.lower().removesuffix(".gz").endswith(".csv"):
            rejects = _register_csv(con, path)
        else:
            rejects = _register_json(con, path)
        con.execute(USAGE_SQL)
        return base.SourceRows(
            {"token_usage": base.frame(con, TOKEN_USAGE_SQL), "people": base.frame(con, PEOPLE_SQL)},
            rejects,
        )


# --- helpers ---------------------------------------------------------------------------


def _register_csv(con: duckdb.DuckDBPyConnection, path: Path) -> pl.DataFrame:
    """Table `logs` (position, the read columns as text, meta JSON) from a CSV export; its rejects."""
    rows = readers.read_file(
        con, readers.InputFile(path, "csv", path.name.lower().endswith(".gz")),
        view_name="spend_csv", list_fields=frozenset(), json_fields=(), redact=REDACTED,
    )
    try:
        if rows.relation is None:
            con.execute(f"CREATE TEMP TABLE logs AS SELECT {', '.join(f'NULL::VARCHAR AS {quote(c)}' for c in COLUMNS)}, "
                        "NULL::BIGINT AS position, NULL::JSON AS meta WHERE false")
        else:
            picked = ", ".join(f"{quote(c) if c in rows.columns else 'NULL'}::VARCHAR AS {quote(c)}" for c in COLUMNS)
            meta = "TRY_CAST(metadata AS JSON)" if "metadata" in rows.columns else "NULL::JSON"
            con.execute(f"CREATE TEMP TABLE logs AS SELECT __position AS position, {picked}, {meta} AS meta FROM {rows.relation}")
        rejects = pl.from_arrow(rows.rejects)
    finally:
        rows.release()
    return rejects.with_columns(dataset=pl.lit("token_usage")).select(list(base.REJECT_SCHEMA)).cast(base.REJECT_SCHEMA)


def _register_json(con: duckdb.DuckDBPyConnection, path: Path) -> pl.DataFrame:
    """Table `logs` from a JSON export (array, pages or lines); its rejects."""
    damage = base.register_json_records(con, path, "records")
    picked = ", ".join(f"json_text(record -> {readers.sql_literal('$.' + readers.json_path_key(c))}) AS {quote(c)}" for c in COLUMNS)
    con.execute(
        f"""
        CREATE TEMP TABLE logs AS
        SELECT position, {picked},
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


USAGE_SQL = """
CREATE OR REPLACE TEMP TABLE usage AS
WITH read AS (
    SELECT *,
           coalesce(nullif(trim("user"), ''), meta ->> '$.user_api_key_user_id', nullif(trim(end_user), '')) AS who,
           coalesce(json_text(meta -> '$.usage_object.cache_read_input_tokens'),
                    json_text(meta -> '$.usage_object.prompt_tokens_details.cached_tokens')) AS cache_read,
           json_text(meta -> '$.usage_object.cache_creation_input_tokens') AS cache_write,
           coalesce(meta ->> '$.user_api_key_team_alias', nullif(trim(team_id), '')) AS team
    FROM logs
)
SELECT *,
       CASE WHEN TRY_CAST(prompt_tokens AS BIGINT) IS NOT NULL
            THEN CAST(greatest(CAST(prompt_tokens AS BIGINT) - coalesce(TRY_CAST(cache_read AS BIGINT), 0)
                               - coalesce(TRY_CAST(cache_write AS BIGINT), 0), 0) AS VARCHAR)
            ELSE prompt_tokens END AS input_tokens,
       CAST(json_object('request_id', request_id, 'user', who, 'session_id', session_id, 'model', coalesce(model, model_group),
                        'prompt_tokens', prompt_tokens, 'completion_tokens', completion_tokens, 'cache_read', cache_read,
                        'cache_write', cache_write, 'spend', spend, 'startTime', "startTime", 'team', team) AS VARCHAR) AS raw
FROM read
"""

TOKEN_USAGE_SQL = """
SELECT position AS __position, raw AS __raw, request_id, "startTime" AS ts, who AS user_id,
       coalesce(nullif(trim(session_id), ''), 'litellm:' || who || ':' || strftime(TRY_CAST("startTime" AS TIMESTAMPTZ), '%Y-%m-%d'))
           AS session_id,
       coalesce(nullif(trim(model), ''), model_group) AS model, input_tokens, completion_tokens AS output_tokens,
       cache_read AS cache_read_tokens, cache_write AS cache_write_tokens, spend AS cost_usd, 'litellm' AS tool
FROM usage ORDER BY position
"""

PEOPLE_SQL = """
SELECT min(position) AS __position, CAST(json_object('user', who, 'team', arg_max(team, TRY_CAST("startTime" AS TIMESTAMPTZ))) AS VARCHAR) AS __raw,
       who AS user_id, arg_max(team, TRY_CAST("startTime" AS TIMESTAMPTZ)) AS team
FROM usage WHERE who IS NOT NULL AND team IS NOT NULL
GROUP BY who ORDER BY 1
"""

# settings
COLUMNS = ("request_id", "user", "end_user", "session_id", "model", "model_group", "prompt_tokens", "completion_tokens",
           "spend", "startTime", "team_id")
REDACTED = frozenset({"messages", "response", "proxy_server_request"})  # may hold prompt text
