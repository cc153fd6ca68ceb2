-- user_week_scores: one row for EVERY (user_id, week_start) with AI usage, flagged or not.
-- Features from user_week_peer_features joined to the detectors' output (registered as
-- `scored_user_weeks`). A flag an analyst judged legitimate is not raised again while the same
-- detectors raise it (see latest_verdicts).

WITH
features AS (SELECT * FROM user_week_peer_features),
detected AS (SELECT * FROM scored_user_weeks),
analyst_verdicts AS (SELECT * FROM latest_verdicts),

judged AS (
    SELECT
        detected.*,
        'user_week:' || detected.user_id || ':' || CAST(detected.week_start AS VARCHAR) AS flag_id,
        array_to_string(list_sort(detected.detectors), ',') AS evidence_key
    FROM detected
),

dismissals AS (
    -- an analyst judged this flag legitimate and the same detectors raise it again: do not re-raise
    SELECT judged.flag_id, analyst_verdicts.verdict, analyst_verdicts.note, analyst_verdicts.recorded_at,
           judged.flagged AND analyst_verdicts.verdict = 'legitimate'
               AND analyst_verdicts.evidence_key = judged.evidence_key AS dismissed
    FROM judged
    JOIN analyst_verdicts USING (flag_id)
)

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
    detected.score,
    detected.flagged AND NOT coalesce(dismissals.dismissed, false) AS flagged,
    CASE WHEN dismissals.dismissed THEN NULL ELSE detected.severity END AS severity,
    detected.detectors,
    CASE WHEN dismissals.dismissed
        THEN 'dismissed by an analyst as legitimate on ' || strftime(dismissals.recorded_at, '%Y-%m-%d')
             || coalesce(' (' || dismissals.note || ')', '') || '; same evidence: ' || detected.reasons
        ELSE detected.reasons
    END AS reasons,
    detected.evidence,
    CASE WHEN dismissals.dismissed THEN 0.0 ELSE detected.wasted_cost_usd END AS wasted_cost_usd,
    detected.flag_id,
    detected.evidence_key,
    dismissals.verdict,
    coalesce(dismissals.dismissed, false) AS dismissed
FROM features
JOIN judged AS detected USING (user_id, week_start)
LEFT JOIN dismissals USING (flag_id)
