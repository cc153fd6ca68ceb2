-- kind: query
-- grain: name
-- leaderboard_period: the honest leaderboard over the last `leaderboard_weeks` weeks: one row per
-- team (or per person when `leaderboard_by` = 'person'), ranked by shipped work; the token rank
-- beside it shows what a token leaderboard would have said. Teams under `min_team_size` people
-- (set by the finance report; unset: none) are merged into 'other', as everywhere in the report.
-- Run by pipeline/publish/leaderboard.py.
{% import 'leaderboard.jinja' as leaderboard %}
WITH
shipped AS (SELECT * FROM shipped_work),

team_sizes AS (
    SELECT team, count(DISTINCT user_id) AS people
    FROM shipped
    GROUP BY team
),

reported AS (
    SELECT
        CASE WHEN team_sizes.people >= coalesce(getvariable('min_team_size'), 0) THEN shipped.team ELSE 'other' END AS team,
        shipped.* EXCLUDE (team)
    FROM shipped
    JOIN team_sizes USING (team)
),

period AS (
    SELECT * FROM reported
    WHERE week_start > (SELECT max(week_start) FROM reported)
                       - to_days(CAST(getvariable('leaderboard_weeks') * 7 AS INTEGER))
),

grouped AS (
    SELECT
        CASE getvariable('leaderboard_by') WHEN 'person' THEN user_id ELSE team END AS name,
        any_value(team) AS team,
{{ leaderboard.shipped_work_sums() }},
        min(week_start) AS first_week,
        max(week_start) AS last_week
    FROM period
    GROUP BY name
)

SELECT
    rank() OVER (ORDER BY shipped_units DESC) AS rank,
    rank() OVER (ORDER BY tokens DESC) AS token_rank,
    *
FROM grouped
