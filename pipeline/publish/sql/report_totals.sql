-- kind: full
-- grain: one row
-- temporary: true
-- tags: report
-- report_totals: one row: the database totals every report file adds up to, and the span of the
-- usage behind them. Money in whole cents (the sums over user_week_scores, rounded to the cent
-- once, here); tokens whole (total_wasted_tokens rounded once, here). unpriced_*: requests with no
-- price, counted at $0. data_start / data_end: the first and last request of the reported
-- user-weeks (NULL when they have no request at all).

WITH
user_weeks AS (SELECT * FROM report_user_weeks),
user_week_models AS (SELECT * FROM report_user_week_models),

amounts AS (
    SELECT
        CAST(round(coalesce(sum(cost_usd), 0) * 100) AS BIGINT) AS cost_cents,
        CAST(round(coalesce(sum(wasted_cost_usd), 0) * 100) AS BIGINT) AS wasted_cents,
        CAST(coalesce(sum(tokens), 0) AS BIGINT) AS total_tokens,
        CAST(round(coalesce(sum(wasted_tokens), 0)) AS BIGINT) AS total_wasted_tokens
    FROM user_weeks
),

usage AS (
    SELECT
        CAST(coalesce(sum(unpriced_requests), 0) AS BIGINT) AS unpriced_requests,
        CAST(coalesce(sum(unpriced_tokens), 0) AS BIGINT) AS unpriced_tokens,
        coalesce(string_agg(DISTINCT model, ', ' ORDER BY model) FILTER (WHERE unpriced_requests > 0), '') AS unpriced_models,
        min(first_ts) AS data_start,
        max(last_ts) AS data_end
    FROM user_week_models
)

SELECT amounts.*, usage.*
FROM amounts, usage
