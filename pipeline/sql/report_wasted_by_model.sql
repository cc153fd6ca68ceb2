-- report_wasted_by_model: one row per model, over the whole period: each user-week's cost and
-- wasted cost split over its models by its cost per model (report_user_week_models.sql). Money in
-- cents by largest remainder (report_macros.sql).

WITH
user_week_models AS (SELECT * FROM report_user_week_models),
totals AS (SELECT * FROM report_totals),

models AS (
    SELECT
        model,
        sum(tokens) AS tokens,
        sum(wasted_tokens) AS wasted_tokens,
        sum(cost_usd) AS cost_usd,
        sum(wasted_cost_usd) AS wasted_cost_usd
    FROM user_week_models
    GROUP BY model
),

ranked AS (
    SELECT
        models.*,
        report_floor_cents(cost_usd) AS cost_floor,
        totals.cost_cents - sum(report_floor_cents(cost_usd)) OVER () AS cost_deficit,
        row_number() OVER (ORDER BY report_remainder(cost_usd) DESC, model) AS cost_rank,
        report_floor_cents(wasted_cost_usd) AS wasted_floor,
        totals.wasted_cents - sum(report_floor_cents(wasted_cost_usd)) OVER () AS wasted_deficit,
        row_number() OVER (ORDER BY report_remainder(wasted_cost_usd) DESC, model) AS wasted_rank,
        wasted_cost_usd / nullif(cost_usd, 0) AS exact_wasted_share,
        wasted_cost_usd / nullif(sum(wasted_cost_usd) OVER (), 0) AS exact_share_of_all_wasted
    FROM models
    CROSS JOIN totals
),

rounded AS (
    SELECT
        model,
        report_provider(model) AS provider,
        CAST(round(tokens) AS BIGINT) AS tokens,
        CAST(round(wasted_tokens) AS BIGINT) AS wasted_tokens,
        report_usd(cost_floor, cost_rank, cost_deficit) AS cost_usd,
        report_usd(wasted_floor, wasted_rank, wasted_deficit) AS wasted_cost_usd,
        round(exact_wasted_share, 6) AS wasted_share,
        round(exact_share_of_all_wasted, 6) AS share_of_all_wasted
    FROM ranked
)

SELECT *
FROM rounded
ORDER BY wasted_cost_usd DESC, model
