-- kind: full
-- grain: user_id, week_start, model
-- temporary: true
-- tags: report
-- report_user_week_models: one row per (user_id, week_start, model) the user-week used.
-- The user-week's wasted cost (and cost) is split over its models in proportion to its cost per
-- model in token_usage (by tokens when its requests have no price; one row 'unattributed' when it
-- has no request), so the rows of a user-week add up to its wasted_cost_usd. tokens and
-- wasted_tokens are the user-week's split by the model's share of its tokens, so they add up to
-- the user-week's too. Unrounded; the files round them (report_macros.sql).
-- unpriced_requests / unpriced_tokens: the model's requests with no price (token_usage.cost_usd
-- NULL: a model missing from the price list and a tool that reported no cost), counted at $0.
-- first_ts / last_ts: the model's first and last request of the week (the span of the data).

WITH
user_weeks AS (SELECT * FROM report_user_weeks),
requests AS (
    SELECT user_id, ts, model, input_tokens + output_tokens + cache_read_tokens + cache_write_tokens AS tokens, cost_usd
    FROM token_usage
),

model_usage AS (
    SELECT
        user_id,
        CAST(date_trunc('week', ts) AS DATE) AS week_start,
        model,
        sum(tokens) AS tokens,
        sum(coalesce(cost_usd, 0)) AS cost_usd,
        count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_requests,
        coalesce(sum(tokens) FILTER (WHERE cost_usd IS NULL), 0) AS unpriced_tokens,
        min(ts) AS first_ts,
        max(ts) AS last_ts
    FROM requests
    GROUP BY ALL
),

shares AS (
    SELECT
        user_id,
        week_start,
        model,
        unpriced_requests,
        unpriced_tokens,
        first_ts,
        last_ts,
        CASE
            WHEN sum(cost_usd) OVER user_week > 0 THEN cost_usd / sum(cost_usd) OVER user_week
            WHEN sum(tokens) OVER user_week > 0 THEN CAST(tokens AS DOUBLE) / sum(tokens) OVER user_week
            ELSE 1.0 / count(*) OVER user_week
        END AS cost_share,
        CASE
            WHEN sum(tokens) OVER user_week > 0 THEN CAST(tokens AS DOUBLE) / sum(tokens) OVER user_week
            ELSE 1.0 / count(*) OVER user_week
        END AS token_share
    FROM model_usage
    WINDOW user_week AS (PARTITION BY user_id, week_start)
)

SELECT
    user_weeks.run_id,
    user_weeks.user_id,
    user_weeks.team,
    user_weeks.org,
    user_weeks.week_start,
    coalesce(shares.model, 'unattributed') AS model,
    user_weeks.tokens * coalesce(shares.token_share, 1.0) AS tokens,
    user_weeks.cost_usd * coalesce(shares.cost_share, 1.0) AS cost_usd,
    user_weeks.wasted_cost_usd * coalesce(shares.cost_share, 1.0) AS wasted_cost_usd,
    user_weeks.wasted_tokens * coalesce(shares.token_share, 1.0) AS wasted_tokens,
    CAST(coalesce(shares.unpriced_requests, 0) AS BIGINT) AS unpriced_requests,
    CAST(coalesce(shares.unpriced_tokens, 0) AS BIGINT) AS unpriced_tokens,
    shares.first_ts,
    shares.last_ts
FROM user_weeks
LEFT JOIN shares USING (user_id, week_start)
