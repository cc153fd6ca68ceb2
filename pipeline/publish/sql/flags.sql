-- kind: incremental_by_week
-- grain: flag_id
-- tags: publish
-- flags: one row per flagged user-week or session of the run, with its detectors and evidence.
-- flag_id is stable across runs for the same level and subject, so analysts' verdicts stick.
-- An incremental run replaces the rows of the weeks that can change only (republished_week:
-- pipeline/publish/scores.py); run_id is the run that last published the row.

WITH
user_weeks AS (SELECT * FROM user_week_scores WHERE flagged AND republished_week(week_start)),
sessions AS (SELECT * FROM session_scores WHERE flagged AND republished_week(week_start))

{% for level, relation, session_id in [('user_week', 'user_weeks', 'CAST(NULL AS VARCHAR)'), ('session', 'sessions', 'session_id')] -%}
{% if not loop.first %}UNION ALL
{% endif -%}
SELECT
    flag_id, run_id, '{{ level }}' AS level, user_id, team, week_start, {{ session_id }} AS session_id,
    score, severity, detectors, reasons, evidence, tokens, cost_usd, wasted_cost_usd, evidence_key, verdict
FROM {{ relation }}
{% endfor %}
