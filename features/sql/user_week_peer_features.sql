-- user_week_peer_features: one row per (user_id, week_start): user_week_features plus, for each key
-- feature f, its team and org baseline (f_team_median, f_org_median) and robust z-scores
-- (f_team_z, f_org_z) against them, so a heavy but productive team does not look like gamers.

WITH
user_weeks AS (SELECT * FROM user_week_features),
baselines AS (SELECT * FROM peer_baselines),

wide AS (
    SELECT
        scope,
        group_name,
        week_start,
        max(median) FILTER (WHERE feature = 'tokens') AS tokens_median,
        max(mad) FILTER (WHERE feature = 'tokens') AS tokens_mad,
        max(median) FILTER (WHERE feature = 'cost_usd') AS cost_usd_median,
        max(mad) FILTER (WHERE feature = 'cost_usd') AS cost_usd_mad,
        max(median) FILTER (WHERE feature = 'tokens_per_deployed_change') AS tokens_per_deployed_change_median,
        max(mad) FILTER (WHERE feature = 'tokens_per_deployed_change') AS tokens_per_deployed_change_mad,
        max(median) FILTER (WHERE feature = 'unshipped_token_share') AS unshipped_token_share_median,
        max(mad) FILTER (WHERE feature = 'unshipped_token_share') AS unshipped_token_share_mad,
        max(median) FILTER (WHERE feature = 'near_repeat_share') AS near_repeat_share_median,
        max(mad) FILTER (WHERE feature = 'near_repeat_share') AS near_repeat_share_mad,
        max(median) FILTER (WHERE feature = 'merged_changes') AS merged_changes_median,
        max(mad) FILTER (WHERE feature = 'merged_changes') AS merged_changes_mad,
        max(median) FILTER (WHERE feature = 'tiny_change_share') AS tiny_change_share_median,
        max(mad) FILTER (WHERE feature = 'tiny_change_share') AS tiny_change_share_mad,
        max(median) FILTER (WHERE feature = 'deployments_per_change') AS deployments_per_change_median,
        max(mad) FILTER (WHERE feature = 'deployments_per_change') AS deployments_per_change_mad,
        max(median) FILTER (WHERE feature = 'peak_3h_token_share') AS peak_3h_token_share_median,
        max(mad) FILTER (WHERE feature = 'peak_3h_token_share') AS peak_3h_token_share_mad
    FROM baselines
    GROUP BY ALL
)

SELECT
    user_weeks.*,
    team.tokens_median AS tokens_team_median,
    org.tokens_median AS tokens_org_median,
    robust_z(user_weeks.tokens, team.tokens_median, team.tokens_mad) AS tokens_team_z,
    robust_z(user_weeks.tokens, org.tokens_median, org.tokens_mad) AS tokens_org_z,
    team.cost_usd_median AS cost_usd_team_median,
    org.cost_usd_median AS cost_usd_org_median,
    robust_z(user_weeks.cost_usd, team.cost_usd_median, team.cost_usd_mad) AS cost_usd_team_z,
    robust_z(user_weeks.cost_usd, org.cost_usd_median, org.cost_usd_mad) AS cost_usd_org_z,
    team.tokens_per_deployed_change_median AS tokens_per_deployed_change_team_median,
    org.tokens_per_deployed_change_median AS tokens_per_deployed_change_org_median,
    robust_z(user_weeks.tokens_per_deployed_change, team.tokens_per_deployed_change_median, team.tokens_per_deployed_change_mad) AS tokens_per_deployed_change_team_z,
    robust_z(user_weeks.tokens_per_deployed_change, org.tokens_per_deployed_change_median, org.tokens_per_deployed_change_mad) AS tokens_per_deployed_change_org_z,
    team.unshipped_token_share_median AS unshipped_token_share_team_median,
    org.unshipped_token_share_median AS unshipped_token_share_org_median,
    robust_z(user_weeks.unshipped_token_share, team.unshipped_token_share_median, team.unshipped_token_share_mad) AS unshipped_token_share_team_z,
    robust_z(user_weeks.unshipped_token_share, org.unshipped_token_share_median, org.unshipped_token_share_mad) AS unshipped_token_share_org_z,
    team.near_repeat_share_median AS near_repeat_share_team_median,
    org.near_repeat_share_median AS near_repeat_share_org_median,
    robust_z(user_weeks.near_repeat_share, team.near_repeat_share_median, team.near_repeat_share_mad) AS near_repeat_share_team_z,
    robust_z(user_weeks.near_repeat_share, org.near_repeat_share_median, org.near_repeat_share_mad) AS near_repeat_share_org_z,
    team.merged_changes_median AS merged_changes_team_median,
    org.merged_changes_median AS merged_changes_org_median,
    robust_z(user_weeks.merged_changes, team.merged_changes_median, team.merged_changes_mad) AS merged_changes_team_z,
    robust_z(user_weeks.merged_changes, org.merged_changes_median, org.merged_changes_mad) AS merged_changes_org_z,
    team.tiny_change_share_median AS tiny_change_share_team_median,
    org.tiny_change_share_median AS tiny_change_share_org_median,
    robust_z(user_weeks.tiny_change_share, team.tiny_change_share_median, team.tiny_change_share_mad) AS tiny_change_share_team_z,
    robust_z(user_weeks.tiny_change_share, org.tiny_change_share_median, org.tiny_change_share_mad) AS tiny_change_share_org_z,
    team.deployments_per_change_median AS deployments_per_change_team_median,
    org.deployments_per_change_median AS deployments_per_change_org_median,
    robust_z(user_weeks.deployments_per_change, team.deployments_per_change_median, team.deployments_per_change_mad) AS deployments_per_change_team_z,
    robust_z(user_weeks.deployments_per_change, org.deployments_per_change_median, org.deployments_per_change_mad) AS deployments_per_change_org_z,
    team.peak_3h_token_share_median AS peak_3h_token_share_team_median,
    org.peak_3h_token_share_median AS peak_3h_token_share_org_median,
    robust_z(user_weeks.peak_3h_token_share, team.peak_3h_token_share_median, team.peak_3h_token_share_mad) AS peak_3h_token_share_team_z,
    robust_z(user_weeks.peak_3h_token_share, org.peak_3h_token_share_median, org.peak_3h_token_share_mad) AS peak_3h_token_share_org_z
FROM user_weeks
LEFT JOIN wide AS team
    ON team.scope = 'team' AND team.group_name = user_weeks.team AND team.week_start = user_weeks.week_start
LEFT JOIN wide AS org
    ON org.scope = 'org' AND org.group_name = user_weeks.org AND org.week_start = user_weeks.week_start
