-- kind: incremental_by_week
-- grain: session_id, week_start, repo
-- session_repo_prompts: one row per (session_id, week_start, repo) with prompts: how many prompts
-- the session sent in that repository that week (repo NULL: prompts without one). The publish step
-- splits a session's spend over repositories by its prompts there (waste_by_dimension_week, which
-- labels the NULL repository '(none)').

WITH
prompts AS (SELECT session_id, ts, repo FROM invocations)

SELECT session_id, iso_week(ts) AS week_start, repo, count(*) AS prompts
FROM prompts
GROUP BY ALL
