-- report_wasted_by_person: one row per person (only written with include_people=True), over the
-- whole period, with the team finance sees (small teams merged into 'other' as everywhere else).
-- Money in cents and tokens in whole tokens by largest remainder (report_macros.sql).

WITH
user_weeks AS (SELECT * FROM report_user_weeks),
totals AS (SELECT * FROM report_totals),

people AS (
    SELECT
        user_id,
        min(team) AS team,
        min(org) AS org,
        count(*) AS user_weeks,
        count(*) FILTER (WHERE flagged) AS flagged_user_weeks,
        sum(tokens) AS tokens,
        sum(wasted_tokens) AS wasted_tokens,
        sum(cost_usd) AS cost_usd,
        sum(wasted_cost_usd) AS wasted_cost_usd
    FROM user_weeks
    GROUP BY user_id
),

ranked AS (
    SELECT
        people.*,
        report_floor_cents(cost_usd) AS cost_floor,
        totals.cost_cents - sum(report_floor_cents(cost_usd)) OVER () AS cost_deficit,
        row_number() OVER (ORDER BY report_remainder(cost_usd) DESC, user_id) AS cost_rank,
        report_floor_cents(wasted_cost_usd) AS wasted_floor,
        totals.wasted_cents - sum(report_floor_cents(wasted_cost_usd)) OVER () AS wasted_deficit,
        row_number() OVER (ORDER BY report_remainder(wasted_cost_usd) DESC, user_id) AS wasted_rank,
        report_floor_tokens(wasted_tokens) AS wasted_tokens_floor,
        totals.total_wasted_tokens - sum(report_floor_tokens(wasted_tokens)) OVER () AS wasted_tokens_deficit,
        row_number() OVER (ORDER BY report_token_remainder(wasted_tokens) DESC, user_id) AS wasted_tokens_rank,
        wasted_cost_usd / nullif(cost_usd, 0) AS exact_wasted_share
    FROM people
    CROSS JOIN totals
),

rounded AS (
    SELECT
        user_id,
        team,
        org,
        user_weeks,
        flagged_user_weeks,
        CAST(tokens AS BIGINT) AS tokens,
        report_tokens(wasted_tokens_floor, wasted_tokens_rank, wasted_tokens_deficit) AS wasted_tokens,
        report_usd(cost_floor, cost_rank, cost_deficit) AS cost_usd,
        report_usd(wasted_floor, wasted_rank, wasted_deficit) AS wasted_cost_usd,
        round(exact_wasted_share, 6) AS wasted_share
    FROM ranked
)

SELECT *
FROM rounded
ORDER BY wasted_cost_usd DESC, user_id
