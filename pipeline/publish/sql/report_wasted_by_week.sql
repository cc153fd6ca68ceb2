-- report_wasted_by_week: one row per ISO week (Monday, UTC) from the first to the last week of
-- user_week_scores, weeks without usage included as zeros. Money in cents and tokens in whole
-- tokens by largest remainder (report_macros.sql).
-- coverage_days: the days of the week (Monday to Sunday) from the first to the last day with a
-- request (7 inside the data). complete: the week is covered on all 7 days and the data goes on
-- after it; the week the data ends in never is (its usage may still be arriving, and flags that
-- need later evidence, such as deployments, may still come), nor is a first week the data starts
-- after its Monday. Week-over-week change and the least-squares trend use complete weeks only,
-- on the rounded amounts, so they agree with the column they describe.

WITH
user_weeks AS (SELECT * FROM report_user_weeks),
totals AS (SELECT * FROM report_totals),

calendar AS (
    SELECT CAST(unnest(generate_series(min(week_start), max(week_start), INTERVAL 7 DAY)) AS DATE) AS week_start
    FROM user_weeks
),

weekly AS (
    SELECT
        calendar.week_start,
        count(DISTINCT user_weeks.user_id) AS people,
        count(user_weeks.user_id) AS user_weeks,
        count(*) FILTER (WHERE user_weeks.flagged) AS flagged_user_weeks,
        coalesce(sum(user_weeks.tokens), 0) AS tokens,
        coalesce(sum(user_weeks.wasted_tokens), 0) AS wasted_tokens,
        coalesce(sum(user_weeks.cost_usd), 0) AS cost_usd,
        coalesce(sum(user_weeks.wasted_cost_usd), 0) AS wasted_cost_usd
    FROM calendar
    LEFT JOIN user_weeks USING (week_start)
    GROUP BY calendar.week_start
),

coverage AS (
    SELECT
        weekly.*,
        CASE WHEN totals.data_end IS NULL THEN 7 ELSE greatest(0, date_diff(
            'day',
            greatest(CAST(totals.data_start AS DATE), weekly.week_start),
            least(CAST(totals.data_end AS DATE), weekly.week_start + 6)
        ) + 1) END AS coverage_days,
        totals.data_end IS NULL OR (
            CAST(totals.data_start AS DATE) <= weekly.week_start
            AND totals.data_end >= CAST(weekly.week_start + 7 AS TIMESTAMP)
        ) AS complete
    FROM weekly
    CROSS JOIN totals
),

ranked AS (
    SELECT
        coverage.*,
        report_floor_cents(cost_usd) AS cost_floor,
        totals.cost_cents - sum(report_floor_cents(cost_usd)) OVER () AS cost_deficit,
        row_number() OVER (ORDER BY report_remainder(cost_usd) DESC, week_start) AS cost_rank,
        report_floor_cents(wasted_cost_usd) AS wasted_floor,
        totals.wasted_cents - sum(report_floor_cents(wasted_cost_usd)) OVER () AS wasted_deficit,
        row_number() OVER (ORDER BY report_remainder(wasted_cost_usd) DESC, week_start) AS wasted_rank,
        report_floor_tokens(wasted_tokens) AS wasted_tokens_floor,
        totals.total_wasted_tokens - sum(report_floor_tokens(wasted_tokens)) OVER () AS wasted_tokens_deficit,
        row_number() OVER (ORDER BY report_token_remainder(wasted_tokens) DESC, week_start) AS wasted_tokens_rank,
        wasted_cost_usd / nullif(cost_usd, 0) AS exact_wasted_share
    FROM coverage
    CROSS JOIN totals
),

rounded AS (
    SELECT
        week_start,
        coverage_days,
        complete,
        people,
        user_weeks,
        flagged_user_weeks,
        CAST(tokens AS BIGINT) AS tokens,
        report_tokens(wasted_tokens_floor, wasted_tokens_rank, wasted_tokens_deficit) AS wasted_tokens,
        report_usd(cost_floor, cost_rank, cost_deficit) AS cost_usd,
        report_usd(wasted_floor, wasted_rank, wasted_deficit) AS wasted_cost_usd,
        exact_wasted_share AS wasted_share,
        row_number() OVER (ORDER BY week_start) - 1 AS week_index
    FROM ranked
),

changes AS (
    SELECT
        *,
        lag(wasted_cost_usd) OVER (ORDER BY week_start) AS previous_wasted_cost_usd,
        lag(complete) OVER (ORDER BY week_start) AS previous_complete,
        regr_slope(CASE WHEN complete THEN CAST(wasted_cost_usd AS DOUBLE) END, week_index) OVER () AS trend_slope,
        regr_intercept(CASE WHEN complete THEN CAST(wasted_cost_usd AS DOUBLE) END, week_index) OVER () AS trend_intercept
    FROM rounded
)

SELECT
    week_start,
    week_start + 6 AS week_end,
    strftime(week_start, '%G-W%V') AS iso_week,
    coverage_days,
    complete,
    people,
    user_weeks,
    flagged_user_weeks,
    tokens,
    wasted_tokens,
    cost_usd,
    wasted_cost_usd,
    round(wasted_share, 6) AS wasted_share,
    CASE WHEN complete AND previous_complete THEN wasted_cost_usd - previous_wasted_cost_usd END AS wow_change_usd,
    CASE WHEN complete AND previous_complete
        THEN round((wasted_cost_usd - previous_wasted_cost_usd) / nullif(previous_wasted_cost_usd, 0), 6)
    END AS wow_change_ratio,
    CASE WHEN complete THEN CAST(round(trend_intercept + trend_slope * week_index, 2) AS DECIMAL(18, 2)) END AS trend_wasted_cost_usd,
    round(trend_slope, 2) AS trend_usd_per_week
FROM changes
ORDER BY week_start
