-- kind: full
-- grain: one row
-- temporary: true
-- tags: report
-- report_summary: one row: the report's headline numbers, the run and the period it covers.
-- total_cost_usd, wasted_cost_usd, total_tokens and wasted_tokens are the database totals
-- (report_totals), which every file adds up to; period_end is the Sunday of the last week
-- (inclusive). unpriced_*: requests with no price, counted at $0. data_start / data_end: the
-- first and last request; last_week_complete is false when the data ends inside the last week
-- (report_wasted_by_week.sql). flagged_user_weeks_without_waste: flags that carry no wasted cost.

WITH
user_weeks AS (SELECT * FROM report_user_weeks),
weeks AS (SELECT * FROM report_wasted_by_week),
teams AS (SELECT * FROM report_wasted_by_team),
totals AS (SELECT * FROM report_totals),
scores AS (SELECT user_id, coalesce(team, 'unassigned') AS team FROM user_week_scores),

source_teams AS (
    SELECT team, count(DISTINCT user_id) AS people
    FROM scores
    GROUP BY team
),

usage AS (
    SELECT
        string_agg(DISTINCT run_id, ', ' ORDER BY run_id) AS run_id,
        count(DISTINCT user_id) AS people,
        count(*) AS user_weeks,
        count(*) FILTER (WHERE flagged) AS flagged_user_weeks,
        count(*) FILTER (WHERE flagged AND wasted_cost_usd = 0) AS flagged_user_weeks_without_waste,
        coalesce(sum(wasted_cost_usd) / nullif(sum(cost_usd), 0), 0) AS exact_wasted_share
    FROM user_weeks
),

period AS (
    SELECT
        min(week_start) AS period_start,
        max(week_end) AS period_end,
        count(*) AS weeks,
        count(*) FILTER (WHERE complete) AS complete_weeks,
        arg_max(complete, week_start) AS last_week_complete,
        any_value(trend_usd_per_week) AS trend_usd_per_week
    FROM weeks
),

team_counts AS (
    SELECT
        (SELECT count(*) FROM teams) AS teams,
        (SELECT count(*) FROM source_teams WHERE people < getvariable('min_team_size')) AS teams_merged_into_other
)

SELECT
    usage.run_id,
    period.period_start,
    period.period_end,
    period.weeks,
    period.complete_weeks,
    period.last_week_complete,
    strftime(totals.data_start, '%Y-%m-%dT%H:%M:%SZ') AS data_start,
    strftime(totals.data_end, '%Y-%m-%dT%H:%M:%SZ') AS data_end,
    team_counts.teams,
    team_counts.teams_merged_into_other,
    CAST(getvariable('min_team_size') AS INTEGER) AS min_team_size,
    usage.people,
    usage.user_weeks,
    usage.flagged_user_weeks,
    usage.flagged_user_weeks_without_waste,
    CAST(totals.cost_cents / 100 AS DECIMAL(18, 2)) AS total_cost_usd,
    CAST(totals.wasted_cents / 100 AS DECIMAL(18, 2)) AS wasted_cost_usd,
    round(usage.exact_wasted_share, 6) AS wasted_share,
    totals.total_tokens,
    totals.total_wasted_tokens AS wasted_tokens,
    totals.unpriced_requests,
    totals.unpriced_tokens,
    totals.unpriced_models,
    period.trend_usd_per_week
FROM usage, period, team_counts, totals
