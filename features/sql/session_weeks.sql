-- kind: incremental_by_week
-- grain: session_id, user_id, week_start
-- session_weeks: one row per (session_id, user_id, week_start) with an event (a request or a
-- prompt) of that session by that user in that ISO week: the events, the first and last event
-- time, and the active minutes (each gap between consecutive events of the session, capped at
-- `active_gap_cap_minutes`, counts in the week and for the user of the later event).
-- sessions and user_week_features both read it, so the events are ordered once.

WITH
requests AS (SELECT session_id, user_id, ts FROM token_usage),
prompts AS (SELECT session_id, user_id, ts FROM invocations),

events AS (
    SELECT * FROM requests
    UNION ALL
    SELECT * FROM prompts
),

event_gaps AS (
    SELECT
        session_id,
        user_id,
        ts,
        epoch(ts - lag(ts) OVER (PARTITION BY session_id ORDER BY ts)) / 60.0 AS gap_minutes
    FROM events
)

SELECT
    session_id,
    user_id,
    iso_week(ts) AS week_start,
    count(*) AS events,
    min(ts) AS first_ts,
    max(ts) AS last_ts,
    -- least() skips NULLs, so the session's first event (no gap) must be left out, not capped
    coalesce(sum(least(gap_minutes, getvariable('active_gap_cap_minutes'))) FILTER (WHERE gap_minutes IS NOT NULL), 0)
        AS active_minutes
FROM event_gaps
GROUP BY session_id, user_id, iso_week(ts)
