-- kind: incremental_by_week
-- grain: session_id
-- tags: publish
-- session_scores: one row for EVERY session, flagged or not. Features from session_features
-- joined to the detectors' output (registered as `scored_sessions`). A flag an analyst judged
-- legitimate is not raised again while the same detectors raise it (see latest_verdicts).
-- An incremental run replaces the rows of the weeks that can change only (republished_week:
-- pipeline/publish/scores.py); run_id is the run that last published the row.

{% import 'judged.jinja' as judged %}
WITH
features AS (SELECT * FROM session_features WHERE republished_week(week_start)),
-- the detectors' output, the sessions of a run-up week its rule names replaced (detectors/run_up.py)
detected AS (
    SELECT * FROM scored_sessions ANTI JOIN session_run_ups USING (session_id)
    WHERE republished_week(week_start)
    UNION ALL BY NAME
    SELECT * FROM session_run_ups WHERE republished_week(week_start)
),
analyst_verdicts AS (SELECT * FROM latest_verdicts),

{{ judged.judged_ctes("'session:' || detected.session_id") }}

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
    {{ judged.judged_columns() }}
FROM features
JOIN judged AS detected USING (session_id)
LEFT JOIN dismissals USING (flag_id)
