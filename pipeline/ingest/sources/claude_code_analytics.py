"""Claude Code Analytics Admin API: daily per-user usage reports (see docs/sources.md).

`GET /v1/organizations/usage_report/claude_code?starting_at=YYYY-MM-DD` returns, per page,
`{"data": [...], "has_more": bool, "next_page": str | null}`; each record is one actor's Claude
Code activity on one UTC day (Anthropic docs, "Claude Code Analytics API":
https://docs.anthropic.com/en/api/claude-code-analytics-api). A file may hold one response, pages
one after another (pretty-printed or not, or in an array) or one record per line.

Daily usage, for people whose per-request logs (Claude Code OpenTelemetry) are missing: the API
publishes no request, prompt or session, so each actor-day becomes one synthetic session
`claude-code-analytics:<actor>:<day>` holding
    token_usage, one row per `model_breakdown` entry: request_id (a stable id from the record's
        organization, day, actor, customer and terminal type, and the model), ts (the day at 12:00
        UTC, a neutral hour: the real hours are unknown), user_id (actor.email_address, else
        `api-key:<actor.api_key_name>`), session_id, model, input_tokens (tokens.input),
        output_tokens, cache_read_tokens (tokens.cache_read), cache_write_tokens
        (tokens.cache_creation), cost_usd (estimated_cost.amount, in cents, / 100, when the currency
        is USD or not given; else NULL: priced from the price table), tool 'claude-code';
    invocations, one row per record: invocation_id (a stable id from the same values but the model),
        ts, user_id, session_id, lines_accepted (core_metrics.lines_of_code.added; NULL when not
        given), no prompt, no repository, no tool_calls (tool_actions count edit proposals only).
Positions: invocations count the file's records (pages unwrapped; a malformed line counts as one);
token_usage count the model_breakdown entries of the records read, in file order.

Rejected under invocations: what is not a JSON object or is malformed, a page whose `data` is no
array, an API error response (`API error response: TYPE`), an object without `actor` (`not a Claude
Code usage record`), an actor with neither email_address nor api_key_name (`no actor identity`).
Rejected under token_usage: a model_breakdown that is not an array (counts as one entry), an entry
that is not an object.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.ingest.sources import base


def read_claude_code_analytics(path: Path) -> base.SourceRows:
    """invocations and token_usage rows (one synthetic session per actor-day) from one report file."""
    with base.connect() as con:
        damage = base.register_api_records(con, path, "records", "data", "actor")
        con.execute(DAYS_SQL)
        con.execute(ENTRIES_SQL)
        rejects = pl.concat([
            base.rejects_of(con, RECORD_REJECTS_SQL, "invocations"),
            base.damage_reject(con, "invocations", "SELECT max(position) FROM records", damage),
            base.rejects_of(con, ENTRY_REJECTS_SQL, "token_usage"),
        ])
        return base.SourceRows(
            {"invocations": base.frame(con, INVOCATIONS_SQL), "token_usage": base.frame(con, TOKEN_USAGE_SQL)},
            rejects,
        )


# --- helpers ---------------------------------------------------------------------------

# one row per record that is an actor-day (who NULL: rejected), with its session and row ids
DAYS_SQL = f"""
CREATE OR REPLACE TEMP TABLE days AS
WITH read AS (
    SELECT position, line, record,
           coalesce(nullif(trim(record ->> '$.actor.email_address'), ''),
                    'api-key:' || nullif(trim(record ->> '$.actor.api_key_name'), '')) AS who,
           json_text(record -> '$.date') AS date_text,
           record ->> '$.organization_id' AS organization_id,
           record ->> '$.customer_type' AS customer_type,
           record ->> '$.terminal_type' AS terminal_type,
           json_text(record -> '$.core_metrics.lines_of_code.added') AS lines_added,
           record -> '$.model_breakdown' AS models,
           CASE WHEN NOT json_exists(record, '$.actor') THEN
                    CASE WHEN record ->> '$.type' = 'error'
                         THEN 'API error response: ' || coalesce(left(record ->> '$.error.type', 40), 'unknown')
                         ELSE 'not a Claude Code usage record' END
           END AS not_a_record
    FROM records WHERE reason IS NULL
),
dated AS (
    SELECT *, strftime(coalesce(TRY_CAST(date_text AS DATE),
                                CAST(timezone('UTC', TRY_CAST(date_text AS TIMESTAMPTZ)) AS DATE)), '%Y-%m-%d') AS day
    FROM read
)
SELECT *,
       coalesce(not_a_record, CASE WHEN who IS NULL THEN 'no actor identity: neither email_address nor api_key_name' END)
           AS reason,
       'claude-code-analytics:' || who || ':' || coalesce(day, date_text, '') AS session_id,
       coalesce(day || 'T12:00:00Z', date_text) AS ts,
       {base.stable_id_sql('claude-code-analytics:', 'organization_id', 'coalesce(day, date_text)', 'who',
                           'customer_type', 'terminal_type')} AS invocation_id
FROM dated
"""

# the model_breakdown entries of the actor-days, numbered in file order (a breakdown that is given but
# is no array counts as one entry); `m` is the entry, NULL for a bad one
ENTRIES_SQL = f"""
CREATE OR REPLACE TEMP TABLE entries AS
WITH given AS (
    SELECT d.* EXCLUDE (e), e.i, e.v AS m
    FROM (SELECT *, unnest(enumerate_list(CAST(json_extract(models, '$[*]') AS JSON[]))) AS e
          FROM days WHERE reason IS NULL AND json_type(models) = 'ARRAY') d
    UNION ALL
    SELECT *, 0, NULL FROM days WHERE reason IS NULL AND json_type(models) NOT IN ('ARRAY', 'NULL')
),
read AS (
    SELECT *, row_number() OVER (ORDER BY position, i) AS entry_position,
           CASE WHEN i = 0 THEN 'malformed model_breakdown: not a JSON array'
                WHEN json_type(m) <> 'OBJECT' THEN 'not a JSON object' END AS entry_reason,
           m ->> '$.model' AS model,
           json_text(m -> '$.estimated_cost.amount') AS amount,
           upper(trim(m ->> '$.estimated_cost.currency')) AS currency
    FROM given
)
SELECT *,
       {base.stable_id_sql('claude-code-analytics:', 'organization_id', 'coalesce(day, date_text)', 'who',
                           'customer_type', 'terminal_type', 'model')} AS request_id,
       -- cents to USD; an amount that is not a number is passed on for the loader to reject
       CASE WHEN coalesce(currency, 'USD') <> 'USD' THEN NULL
            WHEN TRY_CAST(amount AS DOUBLE) IS NULL THEN amount
            ELSE CAST(TRY_CAST(amount AS DOUBLE) / 100 AS VARCHAR) END AS cost_usd,
       CAST(json_object('date', date_text, 'actor', record -> '$.actor', 'organization_id', organization_id,
                        'customer_type', customer_type, 'terminal_type', terminal_type, 'model_breakdown_entry',
                        coalesce(m, models)) AS VARCHAR) AS raw
FROM read
"""

RECORD_REJECTS_SQL = """
SELECT position, line AS raw, reason FROM records WHERE reason IS NOT NULL
UNION ALL
SELECT position, line, reason FROM days WHERE reason IS NOT NULL
ORDER BY position
"""

ENTRY_REJECTS_SQL = """
SELECT entry_position AS position, raw, entry_reason AS reason FROM entries WHERE entry_reason IS NOT NULL ORDER BY position
"""

INVOCATIONS_SQL = """
SELECT position AS __position, line AS __raw, invocation_id, ts, who AS user_id, session_id, lines_added AS lines_accepted
FROM days WHERE reason IS NULL ORDER BY position
"""

TOKEN_USAGE_SQL = """
SELECT entry_position AS __position, raw AS __raw, request_id, ts, who AS user_id, session_id, model,
       json_text(m -> '$.tokens.input') AS input_tokens, json_text(m -> '$.tokens.output') AS output_tokens,
       json_text(m -> '$.tokens.cache_read') AS cache_read_tokens,
       json_text(m -> '$.tokens.cache_creation') AS cache_write_tokens, cost_usd, 'claude-code' AS tool
FROM entries WHERE entry_reason IS NULL ORDER BY entry_position
"""
