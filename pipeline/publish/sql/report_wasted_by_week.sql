-- kind: full
-- grain: week_start
-- temporary: true
-- tags: report
-- report_wasted_by_week: one row per ISO week (Monday, UTC) from the first to the last week of
-- user_week_scores, weeks without usage included as zeros. Money in cents and tokens in whole
-- tokens by largest remainder (report_macros.sql).
-- coverage_days: the days of the week (Monday to Sunday) from the first to the last day with a
-- request (7 inside the data). complete: the week is covered on all 7 days and the data goes on
-- after it; the week the data ends in never is (its usage may still be arriving, and flags that
-- need later evidence, such as deployments, may still come), nor is a first week the data starts
-- after its Monday. Week-over-week change and the least-squares trend use complete weeks only,
-- on the rounded amounts, so they agree with the column they describe.

{% import 'report.jinja' as report %}
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
        {{ report.largest_remainder_columns('week_start') }}
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
        {{ report.rounded_amounts() }},
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
