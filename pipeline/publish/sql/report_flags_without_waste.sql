-- kind: full
-- grain: cause, detector
-- temporary: true
-- tags: report
-- report_flags_without_waste: one row per (cause, detector) of the flagged user-weeks that carry
-- no wasted cost: why a flagged team can show $0.00. cause: 'rule' (detector: each rule that
-- raised the week; a week raised by two such rules counts under both), 'models_only' (only the
-- anomaly models raised it and none of its spend was on unshipped work) or 'no_priced_spend' (the
-- week's requests had no price). Drawn on the page; not written out (wasted_by_team.csv has the
-- counts per team).

WITH
user_weeks AS (SELECT * FROM report_user_weeks),

flags AS (
    SELECT
        team,
        list_filter(detectors, lambda d: starts_with(d, 'rule:')) AS rules,
        CASE
            WHEN cost_usd = 0 THEN 'no_priced_spend'
            WHEN len(list_filter(detectors, lambda d: starts_with(d, 'rule:'))) > 0 THEN 'rule'
            ELSE 'models_only'
        END AS cause
    FROM user_weeks
    WHERE flagged AND wasted_cost_usd = 0
),

by_cause AS (
    SELECT cause, unnest(CASE WHEN cause = 'rule' THEN rules ELSE [CAST(NULL AS VARCHAR)] END) AS detector, team
    FROM flags
)

SELECT
    cause,
    detector,
    count(*) AS user_weeks,
    string_agg(DISTINCT team, ', ' ORDER BY team) AS teams
FROM by_cause
GROUP BY cause, detector
ORDER BY user_weeks DESC, cause, detector
