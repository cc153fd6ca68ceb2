-- report_user_weeks: one row per (user_id, week_start) of user_week_scores, with the team finance
-- sees: the person's team, or 'other' when that team has fewer than `min_team_size` distinct
-- people in user_week_scores. The base of every report table; never written out as it is.

WITH
scores AS (
    SELECT run_id, user_id, coalesce(team, 'unassigned') AS team, coalesce(org, 'unassigned') AS org,
           week_start, tokens, cost_usd, flagged, wasted_cost_usd
    FROM user_week_scores
),

team_sizes AS (
    SELECT team, count(DISTINCT user_id) AS people
    FROM scores
    GROUP BY team
)

SELECT
    scores.run_id,
    scores.user_id,
    CASE WHEN team_sizes.people >= getvariable('min_team_size') THEN scores.team ELSE 'other' END AS team,
    scores.org,
    scores.week_start,
    CAST(coalesce(scores.tokens, 0) AS BIGINT) AS tokens,
    coalesce(scores.cost_usd, 0) AS cost_usd,
    coalesce(scores.flagged, false) AS flagged,
    coalesce(scores.wasted_cost_usd, 0) AS wasted_cost_usd
FROM scores
JOIN team_sizes USING (team)
