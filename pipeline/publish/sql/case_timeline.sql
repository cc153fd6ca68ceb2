-- kind: full
-- grain: hour, measure, part
-- temporary: true
-- tags: case_file
-- case_timeline: the flag's week hour by hour, one row per (hour, measure, part): tokens split by
-- what their session fed (the flagged session apart, for a session flag), prompts and sessions
-- started. Hours with nothing are absent, not 0.
WITH
flag AS (FROM case_flag),
week_sessions AS (
    SELECT s.session_id,
           CASE
               WHEN flag.level = 'session' AND s.session_id = flag.session_id THEN 'the flagged session'
               WHEN s.deployed THEN 'sessions that fed deployed work'
               WHEN NOT s.deployed THEN 'sessions that fed nothing deployed'
               ELSE 'sessions not known to have fed anything'
           END AS part
    FROM session_features AS s, flag
    WHERE s.user_id = flag.user_id AND s.week_start = flag.week_start
),
tokens AS (
    SELECT date_trunc('hour', u.ts) AS hour, 'tokens' AS measure, coalesce(w.part, 'requests outside a session') AS part,
           sum(u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens) AS value
    FROM token_usage AS u
    JOIN flag ON u.user_id = flag.user_id AND u.ts >= flag.window_start AND u.ts < flag.window_end
    LEFT JOIN week_sessions AS w ON w.session_id = u.session_id
    GROUP BY ALL
),
prompts AS (
    SELECT date_trunc('hour', i.ts) AS hour, 'prompts' AS measure, 'prompts' AS part, count(*) AS value
    FROM invocations AS i
    JOIN flag ON i.user_id = flag.user_id AND i.ts >= flag.window_start AND i.ts < flag.window_end
    GROUP BY ALL
),
sessions_started AS (
    SELECT date_trunc('hour', s.started_at) AS hour, 'sessions started' AS measure, 'sessions started' AS part,
           count(*) AS value
    FROM session_features AS s
    JOIN flag ON s.user_id = flag.user_id AND s.started_at >= flag.window_start AND s.started_at < flag.window_end
    GROUP BY ALL
)
SELECT hour, measure, part, CAST(value AS DOUBLE) AS value FROM tokens
UNION ALL SELECT hour, measure, part, CAST(value AS DOUBLE) FROM prompts
UNION ALL SELECT hour, measure, part, CAST(value AS DOUBLE) FROM sessions_started
