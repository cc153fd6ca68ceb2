-- kind: full
-- grain: model
-- temporary: true
-- tags: report
-- report_wasted_by_model: one row per model, over the whole period: each user-week's cost and
-- wasted cost split over its models by its cost per model, its tokens and wasted tokens by its
-- tokens per model (report_user_week_models.sql). Money in cents and tokens in whole tokens by
-- largest remainder (report_macros.sql). unpriced_requests / unpriced_tokens: the model's
-- requests with no price, counted at $0 (their wasted tokens are in wasted_tokens, at $0).

{% import 'report.jinja' as report %}
WITH
user_week_models AS (SELECT * FROM report_user_week_models),
totals AS (SELECT * FROM report_totals),

models AS (
    SELECT
        model,
        sum(tokens) AS tokens,
        sum(wasted_tokens) AS wasted_tokens,
        sum(cost_usd) AS cost_usd,
        sum(wasted_cost_usd) AS wasted_cost_usd,
        sum(unpriced_requests) AS unpriced_requests,
        sum(unpriced_tokens) AS unpriced_tokens
    FROM user_week_models
    GROUP BY model
),

ranked AS (
    SELECT
        models.*,
        {{ report.largest_remainder_columns('model', tokens=true) }},
        wasted_cost_usd / nullif(sum(wasted_cost_usd) OVER (), 0) AS exact_share_of_all_wasted
    FROM models
    CROSS JOIN totals
),

rounded AS (
    SELECT
        model,
        report_provider(model) AS provider,
        report_tokens(tokens_floor, tokens_rank, tokens_deficit) AS tokens,
        report_tokens(wasted_tokens_floor, wasted_tokens_rank, wasted_tokens_deficit) AS wasted_tokens,
        CAST(unpriced_requests AS BIGINT) AS unpriced_requests,
        CAST(unpriced_tokens AS BIGINT) AS unpriced_tokens,
        report_usd(cost_floor, cost_rank, cost_deficit) AS cost_usd,
        report_usd(wasted_floor, wasted_rank, wasted_deficit) AS wasted_cost_usd,
        round(exact_wasted_share, 6) AS wasted_share,
        round(exact_share_of_all_wasted, 6) AS share_of_all_wasted
    FROM ranked
)

SELECT *
FROM rounded
ORDER BY wasted_cost_usd DESC, model
