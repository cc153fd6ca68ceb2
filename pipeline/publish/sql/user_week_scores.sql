-- kind: incremental_by_week
-- grain: user_id, week_start
-- tags: publish
-- user_week_scores: one row for EVERY (user_id, week_start) with AI usage, flagged or not.
-- Features from user_week_peer_features joined to the detectors' output (registered as
-- `scored_user_weeks`). A flag an analyst judged legitimate is not raised again while the same
-- detectors raise it (see latest_verdicts).
-- An incremental run replaces the rows of the weeks that can change only (republished_week:
-- pipeline/publish/scores.py); run_id is the run that last published the row.

{% import 'judged.jinja' as judged %}
WITH
features AS (SELECT * FROM user_week_peer_features WHERE republished_week(week_start)),
-- the detectors' output, the weeks of a run-up to a flagged week replaced (detectors/run_up.py)
detected AS (
    SELECT * FROM scored_user_weeks ANTI JOIN user_week_run_ups USING (user_id, week_start)
    WHERE republished_week(week_start)
    UNION ALL BY NAME
    SELECT * FROM user_week_run_ups WHERE republished_week(week_start)
),
analyst_verdicts AS (SELECT * FROM latest_verdicts),

{{ judged.judged_ctes("'user_week:' || detected.user_id || ':' || CAST(detected.week_start AS VARCHAR)") }}

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
    {{ judged.judged_columns() }}
FROM features
JOIN judged AS detected USING (user_id, week_start)
LEFT JOIN dismissals USING (flag_id)
