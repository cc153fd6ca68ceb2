-- user_week_scores: one row for EVERY (user_id, week_start) with AI usage, flagged or not.
-- Features from user_week_peer_features joined to the detectors' verdicts (registered as
-- `scored_user_weeks`).

WITH
features AS (SELECT * FROM user_week_peer_features),
verdicts AS (SELECT * FROM scored_user_weeks)

SELECT
    getvariable('run_id') AS run_id,
    features.user_id,
    features.team,
    features.org,
    features.week_start,
    features.tokens,
    features.cost_usd,
    features.sessions,
    features.requests,
    features.prompts,
    features.merged_changes,
    features.deployed_changes,
    features.tokens_per_deployed_change,
    features.unshipped_token_share,
    features.near_repeat_share,
    verdicts.score,
    verdicts.flagged,
    verdicts.severity,
    verdicts.detectors,
    verdicts.reasons,
    verdicts.evidence,
    verdicts.wasted_cost_usd
FROM features
JOIN verdicts USING (user_id, week_start)
