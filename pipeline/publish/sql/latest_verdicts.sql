-- kind: full
-- grain: flag_id
-- tags: publish
-- latest_verdicts: one row per flag_id: the analyst's most recent verdict on it.

WITH
verdicts AS (SELECT * FROM verdicts)

SELECT flag_id, arg_max(evidence_key, recorded_at) AS evidence_key, arg_max(verdict, recorded_at) AS verdict,
       arg_max(note, recorded_at) AS note, arg_max(analyst, recorded_at) AS analyst, max(recorded_at) AS recorded_at
FROM verdicts
GROUP BY flag_id
