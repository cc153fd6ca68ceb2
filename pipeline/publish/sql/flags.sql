-- flags: one row per flagged user-week or session of the run, with its detectors and evidence.
-- flag_id is stable across runs for the same level and subject, so analysts' verdicts stick.

WITH
user_weeks AS (SELECT * FROM user_week_scores WHERE flagged),
sessions AS (SELECT * FROM session_scores WHERE flagged)

SELECT
    flag_id,
    run_id,
    'user_week' AS level,
    user_id,
    team,
    week_start,
    CAST(NULL AS VARCHAR) AS session_id,
    score,
    severity,
    detectors,
    reasons,
    evidence,
    tokens,
    cost_usd,
    wasted_cost_usd,
    evidence_key,
    verdict
FROM user_weeks
UNION ALL
SELECT
    flag_id,
    run_id,
    'session' AS level,
    user_id,
    team,
    week_start,
    session_id,
    score,
    severity,
    detectors,
    reasons,
    evidence,
    tokens,
    cost_usd,
    wasted_cost_usd,
    evidence_key,
    verdict
FROM sessions
