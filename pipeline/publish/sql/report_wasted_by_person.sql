-- kind: full
-- grain: user_id
-- temporary: true
-- tags: report_people
-- report_wasted_by_person: one row per person (only written with include_people=True), over the
-- whole period, with the team finance sees (small teams merged into 'other' as everywhere else).
-- Money in cents and tokens in whole tokens by largest remainder (report_macros.sql).

{% import 'report.jinja' as report %}
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
        {{ report.largest_remainder_columns('user_id') }}
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
        {{ report.rounded_amounts() }},
        round(exact_wasted_share, 6) AS wasted_share
    FROM ranked
)

SELECT *
FROM rounded
ORDER BY wasted_cost_usd DESC, user_id
