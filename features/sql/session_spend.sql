-- kind: incremental_by_week
-- grain: user_id, session_id, week_start, model, tool
-- session_spend: one row per (user_id, session_id, week_start, model, tool) with requests: the
-- session's spend and tokens that week on that model through that client ('(unknown)' when the
-- source names none). The publish step splits each user-week's spend and waste over models, tools
-- and repositories from it (waste_by_dimension_week), so a daily run reads the rebuilt weeks'
-- rows of this table instead of scanning every request of the history.

WITH
requests AS (
    SELECT user_id, session_id, ts, model, tool, cost_usd,
           input_tokens + output_tokens + cache_read_tokens + cache_write_tokens AS tokens
    FROM token_usage
)

SELECT
    user_id,
    session_id,
    iso_week(ts) AS week_start,
    model,
    coalesce(tool, '(unknown)') AS tool,
    sum(coalesce(cost_usd, 0)) AS cost_usd,
    sum(tokens) AS tokens
FROM requests
GROUP BY ALL
