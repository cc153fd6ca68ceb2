-- kind: query
-- grain: subscription, item_kind, item_id
-- alert_candidates: one row per (subscription, item) a subscription matches that was not sent to
-- it yet (alerts_sent). Subscriptions are registered by pipeline/publish/alerts.py as `alert_subscriptions`
-- (subscription, scope, scope_name, min_severity_rank, wasted_usd_over, wasted_share_over).
-- Items: flagged user-weeks and sessions (an analyst's dismissal unflags them; a session flagged only
-- because its week was is alerted as the week) of at least the
-- severity, in the scope; and ISO weeks in which the scope's wasted cost is over the dollar amount
-- or the share of its spend. scope 'company' matches everyone; 'team' and 'org' by name.

WITH
subscriptions AS (SELECT * FROM alert_subscriptions),
sent AS (SELECT * FROM alerts_sent),
user_weeks AS (SELECT * FROM user_week_scores),
sessions AS (SELECT * FROM session_scores),

flags AS (
    SELECT flag_id, 'user_week' AS level, user_id, team, org, week_start, severity, wasted_cost_usd, detectors, score
    FROM user_weeks WHERE flagged
    UNION ALL
    SELECT flag_id, 'session', user_id, team, org, week_start, severity, wasted_cost_usd, detectors, score
    FROM sessions
    -- a session flagged only as one of its flagged week's sessions (week_rule:...) is that week's alert
    WHERE flagged AND len(list_filter(detectors, lambda d: NOT starts_with(d, 'week_rule:'))) > 0
),

flag_items AS (
    SELECT s.subscription, 'flag' AS item_kind, f.flag_id AS item_id, f.level, f.user_id, f.team, f.week_start,
           f.severity, f.wasted_cost_usd, CAST(NULL AS DOUBLE) AS cost_usd, f.detectors, f.score
    FROM subscriptions AS s
    JOIN flags AS f
      ON (s.scope = 'company' OR (s.scope = 'team' AND f.team = s.scope_name) OR (s.scope = 'org' AND f.org = s.scope_name))
     AND CASE f.severity WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END >= s.min_severity_rank
),

scope_weeks AS (
    SELECT s.subscription, s.scope, s.scope_name, s.wasted_usd_over, s.wasted_share_over, u.week_start,
           sum(coalesce(u.wasted_cost_usd, 0)) AS wasted_cost_usd, sum(coalesce(u.cost_usd, 0)) AS cost_usd
    FROM subscriptions AS s
    JOIN user_weeks AS u
      ON s.scope = 'company' OR (s.scope = 'team' AND u.team = s.scope_name) OR (s.scope = 'org' AND u.org = s.scope_name)
    WHERE s.wasted_usd_over IS NOT NULL OR s.wasted_share_over IS NOT NULL
    GROUP BY ALL
),

waste_items AS (
    SELECT subscription, 'waste' AS item_kind,
           'waste:' || scope || coalesce(':' || scope_name, '') || ':' || CAST(week_start AS VARCHAR) AS item_id,
           CAST(NULL AS VARCHAR) AS level, CAST(NULL AS VARCHAR) AS user_id, scope_name AS team, week_start,
           CAST(NULL AS VARCHAR) AS severity, wasted_cost_usd, cost_usd, CAST(NULL AS VARCHAR[]) AS detectors,
           CAST(NULL AS DOUBLE) AS score
    FROM scope_weeks
    WHERE wasted_cost_usd > 0
      AND (wasted_cost_usd > wasted_usd_over OR wasted_cost_usd / nullif(cost_usd, 0) > wasted_share_over)
),

items AS (SELECT * FROM flag_items UNION ALL SELECT * FROM waste_items)

SELECT items.*
FROM items
ANTI JOIN sent USING (subscription, item_id)
ORDER BY subscription, item_kind DESC, wasted_cost_usd DESC, item_id
