-- report_user_week_models: one row per (user_id, week_start, model) the user-week used.
-- The user-week's wasted cost (and cost) is split over its models in proportion to its cost per
-- model in token_usage (by tokens when its requests have no price; one row 'unattributed' when it
-- has no request), so the rows of a user-week add up to its wasted_cost_usd. wasted_tokens: the
-- model's tokens times the user-week's wasted fraction (wasted cost / cost).

WITH
user_weeks AS (SELECT * FROM report_user_weeks),
requests AS (
    SELECT user_id, ts, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_usd
    FROM token_usage
),

model_usage AS (
    SELECT
        user_id,
        CAST(date_trunc('week', ts) AS DATE) AS week_start,
        model,
        sum(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens) AS tokens,
        sum(coalesce(cost_usd, 0)) AS cost_usd
    FROM requests
    GROUP BY ALL
),

shares AS (
    SELECT
        user_id,
        week_start,
        model,
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
    CASE WHEN user_weeks.cost_usd > 0
        THEN user_weeks.tokens * coalesce(shares.token_share, 1.0) * least(user_weeks.wasted_cost_usd / user_weeks.cost_usd, 1.0)
        ELSE 0
    END AS wasted_tokens
FROM user_weeks
LEFT JOIN shares USING (user_id, week_start)
