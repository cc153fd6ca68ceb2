-- report_wasted_by_week: one row per ISO week (Monday, UTC) from the first to the last week of
-- user_week_scores, weeks without usage included as zeros. Money in cents by largest remainder
-- (report_macros.sql); week-over-week change and the least-squares trend of the wasted cost are
-- computed on the rounded amounts, so they agree with the column they describe.

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
        coalesce(sum(user_weeks.cost_usd), 0) AS cost_usd,
        coalesce(sum(user_weeks.wasted_cost_usd), 0) AS wasted_cost_usd
    FROM calendar
    LEFT JOIN user_weeks USING (week_start)
    GROUP BY calendar.week_start
),

ranked AS (
    SELECT
        weekly.*,
        report_floor_cents(cost_usd) AS cost_floor,
        totals.cost_cents - sum(report_floor_cents(cost_usd)) OVER () AS cost_deficit,
        row_number() OVER (ORDER BY report_remainder(cost_usd) DESC, week_start) AS cost_rank,
        report_floor_cents(wasted_cost_usd) AS wasted_floor,
        totals.wasted_cents - sum(report_floor_cents(wasted_cost_usd)) OVER () AS wasted_deficit,
        row_number() OVER (ORDER BY report_remainder(wasted_cost_usd) DESC, week_start) AS wasted_rank,
        wasted_cost_usd / nullif(cost_usd, 0) AS exact_wasted_share
    FROM weekly
    CROSS JOIN totals
),

rounded AS (
    SELECT
        week_start,
        people,
        user_weeks,
        flagged_user_weeks,
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
        regr_slope(CAST(wasted_cost_usd AS DOUBLE), week_index) OVER () AS trend_slope,
        regr_intercept(CAST(wasted_cost_usd AS DOUBLE), week_index) OVER () AS trend_intercept
    FROM rounded
)

SELECT
    week_start,
    week_start + 6 AS week_end,
    strftime(week_start, '%G-W%V') AS iso_week,
    people,
    user_weeks,
    flagged_user_weeks,
    cost_usd,
    wasted_cost_usd,
    round(wasted_share, 6) AS wasted_share,
    wasted_cost_usd - previous_wasted_cost_usd AS wow_change_usd,
    round((wasted_cost_usd - previous_wasted_cost_usd) / nullif(previous_wasted_cost_usd, 0), 6) AS wow_change_ratio,
    CAST(round(trend_intercept + trend_slope * week_index, 2) AS DECIMAL(18, 2)) AS trend_wasted_cost_usd,
    round(trend_slope, 2) AS trend_usd_per_week
FROM changes
ORDER BY week_start
