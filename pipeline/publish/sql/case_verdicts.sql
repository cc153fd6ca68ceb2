-- kind: full
-- grain: recorded_at
-- temporary: true
-- tags: case_file
-- case_verdicts: every verdict recorded on the flag, oldest first.
SELECT recorded_at, verdict, note, analyst, evidence_key, run_id
FROM verdicts
WHERE flag_id = getvariable('case_flag_id')
