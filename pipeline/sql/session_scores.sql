-- session_scores: one row for EVERY session, flagged or not. Features from session_features
-- joined to the detectors' verdicts (registered as `scored_sessions`).

WITH
features AS (SELECT * FROM session_features),
verdicts AS (SELECT * FROM scored_sessions)

SELECT
    getvariable('run_id') AS run_id,
    features.session_id,
    features.user_id,
    features.team,
    features.org,
    features.week_start,
    features.started_at,
    features.ended_at,
    features.tokens,
    features.cost_usd,
    features.requests,
    features.prompts,
    features.linked_change_ids,
    features.deployed,
    verdicts.score,
    verdicts.flagged,
    verdicts.severity,
    verdicts.detectors,
    verdicts.reasons,
    verdicts.evidence,
    verdicts.wasted_cost_usd
FROM features
JOIN verdicts USING (session_id)
