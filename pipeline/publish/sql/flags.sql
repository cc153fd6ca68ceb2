-- kind: full
-- grain: flag_id
-- tags: publish
-- flags: one row per flagged user-week or session of the run, with its detectors and evidence.
-- flag_id is stable across runs for the same level and subject, so analysts' verdicts stick.

WITH
user_weeks AS (SELECT * FROM user_week_scores WHERE flagged),
sessions AS (SELECT * FROM session_scores WHERE flagged)

{% for level, relation, session_id in [('user_week', 'user_weeks', 'CAST(NULL AS VARCHAR)'), ('session', 'sessions', 'session_id')] -%}
{% if not loop.first %}UNION ALL
{% endif -%}
SELECT
    flag_id, run_id, '{{ level }}' AS level, user_id, team, week_start, {{ session_id }} AS session_id,
    score, severity, detectors, reasons, evidence, tokens, cost_usd, wasted_cost_usd, evidence_key, verdict
FROM {{ relation }}
{% endfor %}
