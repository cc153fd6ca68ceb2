-- peer_baselines: one row per (scope, group_name, week_start, feature): the median and median
-- absolute deviation of a key feature over the user-weeks of a team (scope 'team') or an org
-- (scope 'org') in the trailing `peer_weeks` weeks, the current week included. NULL values (for
-- example tokens per deployed change in a week with no deployed change) are left out.

WITH
user_weeks AS (SELECT * FROM user_week_features),

feature_values AS (
    UNPIVOT (
        SELECT
            user_id, team, org, week_start,
            CAST(tokens AS DOUBLE) AS tokens,
            CAST(cost_usd AS DOUBLE) AS cost_usd,
            CAST(tokens_per_deployed_change AS DOUBLE) AS tokens_per_deployed_change,
            CAST(unshipped_token_share AS DOUBLE) AS unshipped_token_share,
            CAST(near_repeat_share AS DOUBLE) AS near_repeat_share,
            CAST(merged_changes AS DOUBLE) AS merged_changes,
            CAST(tiny_change_share AS DOUBLE) AS tiny_change_share,
            CAST(deployments_per_change AS DOUBLE) AS deployments_per_change,
            CAST(peak_3h_token_share AS DOUBLE) AS peak_3h_token_share
        FROM user_weeks
    )
    ON tokens, cost_usd, tokens_per_deployed_change, unshipped_token_share, near_repeat_share,
       merged_changes, tiny_change_share, deployments_per_change, peak_3h_token_share
    INTO NAME feature VALUE value
),

scoped_values AS (
    SELECT 'team' AS scope, team AS group_name, week_start, feature, value FROM feature_values
    UNION ALL
    SELECT 'org' AS scope, org AS group_name, week_start, feature, value FROM feature_values
),

group_weeks AS (
    SELECT DISTINCT scope, group_name, week_start FROM scoped_values
)

SELECT
    g.scope,
    g.group_name,
    g.week_start,
    v.feature,
    median(v.value) AS median,
    mad(v.value) AS mad,
    count(*) AS peers
FROM group_weeks AS g
JOIN scoped_values AS v
    ON v.scope = g.scope
    AND v.group_name = g.group_name
    AND v.week_start > g.week_start - to_days(7 * CAST(getvariable('peer_weeks') AS INTEGER))
    AND v.week_start <= g.week_start
GROUP BY ALL
