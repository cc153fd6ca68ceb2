-- kind: full
-- grain: user_id, week_start
-- temporary: true
-- tags: report
-- report_user_weeks: one row per (user_id, week_start) of user_week_scores, with the team finance
-- sees: the person's team, or 'other' when that team has fewer than `min_team_size` distinct
-- people in user_week_scores. The base of every report table; never written out as it is.
-- wasted_tokens: the week's tokens times its wasted share of spend (wasted cost / cost, at most
-- 1; 0 when the week has no priced spend), unrounded. detectors: the detectors that raised the
-- week (kept to explain flags that carry no wasted cost).

WITH
scores AS (
    SELECT run_id, user_id, coalesce(team, 'unassigned') AS team, coalesce(org, 'unassigned') AS org,
           week_start, tokens, cost_usd, flagged, wasted_cost_usd, detectors
    FROM user_week_scores
),

team_sizes AS (
    SELECT team, count(DISTINCT user_id) AS people
    FROM scores
    GROUP BY team
),

typed AS (
    SELECT
        scores.run_id,
        scores.user_id,
        CASE WHEN team_sizes.people >= getvariable('min_team_size') THEN scores.team ELSE 'other' END AS team,
        scores.org,
        scores.week_start,
        CAST(coalesce(scores.tokens, 0) AS BIGINT) AS tokens,
        coalesce(scores.cost_usd, 0) AS cost_usd,
        coalesce(scores.flagged, false) AS flagged,
        coalesce(scores.wasted_cost_usd, 0) AS wasted_cost_usd,
        coalesce(scores.detectors, []) AS detectors
    FROM scores
    JOIN team_sizes USING (team)
)

SELECT
    *,
    CASE WHEN cost_usd > 0 THEN tokens * least(wasted_cost_usd / cost_usd, 1.0) ELSE 0.0 END AS wasted_tokens
FROM typed
