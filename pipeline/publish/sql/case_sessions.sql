-- kind: full
-- grain: session_id
-- temporary: true
-- tags: case_file
-- case_sessions: the person's sessions in the flag's week, scored, the flagged one marked.
SELECT
    s.session_id,
    flag.level = 'session' AND s.session_id = flag.session_id AS is_flagged_session,
    s.started_at, s.ended_at, s.tokens, s.cost_usd, s.prompts, s.deployed, s.linked_change_ids,
    s.score, s.flagged, s.severity, s.detectors
FROM session_scores AS s
JOIN case_flag AS flag ON s.user_id = flag.user_id AND s.week_start = flag.week_start
