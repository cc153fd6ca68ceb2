"""GitHub Copilot usage metrics: the user-day report records (NDJSON, one object per user and day;
a JSON array is read too). See docs/sources.md for the API call and what detection loses at this grain.

Copilot publishes no per-request log, so each user-day becomes one synthetic session
`copilot:<user_login>:<day>` holding
    one token_usage row: request_id = the session id, ts = the day at 12:00 UTC (a neutral hour:
        the real hours are unknown), user_id (user_login, else user_id), model 'copilot',
        input_tokens / output_tokens (prompt_tokens_sum / output_tokens_sum of totals_by_cli and
        totals_by_copilot_app token_usage; 0 when the report has none), no cost (Copilot is billed
        per seat: the row is unpriced unless a `copilot` price is given), tool 'copilot';
    one invocations row: invocation_id = the session id, lines_accepted (loc_added_sum), no prompt.
A record without user_login and user_id (an enterprise or organization total) is rejected as not a
user-day record.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.ingest.sources import base


def read_copilot_user_days(path: Path) -> base.SourceRows:
    """token_usage and invocations rows (one synthetic session per user-day) from one report file."""
    with base.connect() as con:
        damage = base.register_json_records(con, path, "records")
        con.execute(DAYS_SQL)
        rejects = pl.concat([
            base.rejects_of(con, REJECTS_SQL, "token_usage"),
            base.damage_reject(con, "token_usage", "SELECT max(position) FROM records", damage),
        ])
        return base.SourceRows(
            {"token_usage": base.frame(con, TOKEN_USAGE_SQL), "invocations": base.frame(con, INVOCATIONS_SQL)},
            rejects,
        )


# --- helpers ---------------------------------------------------------------------------

DAYS_SQL = """
-- the sum of a list of token counts as text (0 for none); a count that is not a number is passed
-- on as it is, for the loader to reject
CREATE OR REPLACE TEMP MACRO sum_of(l) AS coalesce(list_sum(list_transform(l, lambda x: TRY_CAST(x AS DOUBLE))), 0);
CREATE OR REPLACE TEMP MACRO token_sum(l) AS coalesce(
    list_filter(l, lambda x: x IS NOT NULL AND TRY_CAST(x AS DOUBLE) IS NULL)[1],
    CASE WHEN sum_of(l) = trunc(sum_of(l)) THEN CAST(CAST(sum_of(l) AS HUGEINT) AS VARCHAR) ELSE CAST(sum_of(l) AS VARCHAR) END);

CREATE OR REPLACE TEMP TABLE days AS
WITH read AS (
    SELECT position, line,
           coalesce(record ->> '$.user_login', json_text(record -> '$.user_id')) AS who,
           record ->> '$.day' AS day,
           [json_text(record -> '$.totals_by_cli.token_usage.prompt_tokens_sum'),
            json_text(record -> '$.totals_by_copilot_app.token_usage.prompt_tokens_sum')] AS prompt_sums,
           [json_text(record -> '$.totals_by_cli.token_usage.output_tokens_sum'),
            json_text(record -> '$.totals_by_copilot_app.token_usage.output_tokens_sum')] AS output_sums,
           json_text(record -> '$.loc_added_sum') AS loc_added
    FROM records WHERE reason IS NULL
)
SELECT position, who, day, loc_added,
       'copilot:' || who || ':' || coalesce(day, '') AS session_id,
       strftime(TRY_CAST(day AS DATE), '%Y-%m-%d') || 'T12:00:00Z' AS ts,
       token_sum(prompt_sums) AS input_tokens,
       token_sum(output_sums) AS output_tokens,
       CAST(json_object('user', who, 'day', day, 'prompt_tokens', prompt_sums, 'output_tokens', output_sums,
                        'loc_added_sum', loc_added) AS VARCHAR) AS raw
FROM read
"""

REJECTS_SQL = """
SELECT position, line AS raw, reason FROM records WHERE reason IS NOT NULL
UNION ALL
SELECT d.position, r.line, 'not a user-day record' FROM days d JOIN records r USING (position) WHERE d.who IS NULL
ORDER BY position
"""

TOKEN_USAGE_SQL = """
SELECT position AS __position, raw AS __raw, session_id AS request_id, coalesce(ts, day) AS ts, who AS user_id,
       session_id, 'copilot' AS model, input_tokens, output_tokens, 'copilot' AS tool
FROM days WHERE who IS NOT NULL ORDER BY position
"""

INVOCATIONS_SQL = """
SELECT position AS __position, raw AS __raw, session_id AS invocation_id, coalesce(ts, day) AS ts, who AS user_id,
       session_id, loc_added AS lines_accepted
FROM days WHERE who IS NOT NULL ORDER BY position
"""
