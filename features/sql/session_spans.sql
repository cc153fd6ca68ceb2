-- session_spans: one row per session whose events fall in more than one ISO week, with its first
-- and last week: an incremental build must rebuild all of a session's weeks or none. Spans of
-- sessions built before, widened by the events loaded since (file_id > since_file_id).

WITH
built_sessions AS (SELECT session_id, started_at, ended_at FROM sessions),
new_events AS (
    SELECT session_id, ts FROM token_usage WHERE file_id > getvariable('since_file_id')
    UNION ALL
    SELECT session_id, ts FROM invocations WHERE file_id > getvariable('since_file_id')
),

spans AS (
    SELECT session_id, min(first_ts) AS first_ts, max(last_ts) AS last_ts
    FROM (
        SELECT session_id, started_at AS first_ts, ended_at AS last_ts FROM built_sessions
        UNION ALL
        SELECT session_id, min(ts), max(ts) FROM new_events GROUP BY session_id
    )
    GROUP BY session_id
)

SELECT session_id, iso_week(first_ts) AS first_week, iso_week(last_ts) AS last_week
FROM spans
WHERE iso_week(first_ts) <> iso_week(last_ts)
