-- kind: incremental_by_week
-- grain: session_id, user_id, week_start
-- session_weeks: one row per (session_id, user_id, week_start) with an event (a request or a
-- prompt) of that session by that user in that ISO week: the events, the first and last event
-- time, and the active minutes (each gap between consecutive events of the session, capped at
-- `active_gap_cap_minutes`, counts in the week and for the user of the later event).
-- sessions and user_week_features both read it, so the events are ordered once.
-- Events are first gathered into buckets as wide as the cap (cap-wide slices of time, which never
-- straddle a week): a gap inside a bucket is under the cap, so a bucket's gaps add up to its last
-- event time minus its first, and only the gaps between a session's buckets are ordered and capped
-- (at 10M token rows, 3.9M buckets instead of 14.7M events to order). A session several people
-- share (their events may interleave inside a bucket) is ordered event by event. Durations are
-- summed in whole microseconds, exact in any order, and turned into minutes once.

WITH
requests AS (SELECT session_id, user_id, ts FROM token_usage),
prompts AS (SELECT session_id, user_id, ts FROM invocations),

events AS (
    SELECT * FROM requests
    UNION ALL
    SELECT * FROM prompts
),

settings AS (
    -- the cap in microseconds (a cap under 0 counts as 0); buckets are at least 1 us wide
    SELECT CAST(greatest(getvariable('active_gap_cap_minutes'), 0) * 60000000 AS BIGINT) AS cap_us
),

buckets AS (
    SELECT
        e.session_id,
        e.user_id,
        epoch_us(e.ts) // greatest(s.cap_us, 1) AS bucket,
        count(*) AS events,
        min(e.ts) AS first_ts,
        max(e.ts) AS last_ts
    FROM events AS e
    CROSS JOIN settings AS s
    GROUP BY ALL
),

shared_sessions AS (
    SELECT session_id
    FROM buckets
    GROUP BY session_id
    HAVING min(user_id) <> max(user_id)
),

bucket_gaps AS (
    -- one person's session: the gap before a bucket runs from the previous bucket's last event
    SELECT
        session_id,
        user_id,
        iso_week(first_ts) AS week_start,
        events,
        first_ts,
        last_ts,
        epoch_us(last_ts) - epoch_us(first_ts) AS inner_us,
        epoch_us(first_ts) - epoch_us(lag(last_ts) OVER (PARTITION BY session_id ORDER BY bucket)) AS gap_us
    FROM buckets
    WHERE session_id NOT IN (SELECT session_id FROM shared_sessions)
),

event_gaps AS (
    -- a shared session: event by event
    SELECT
        session_id,
        user_id,
        iso_week(ts) AS week_start,
        1 AS events,
        ts AS first_ts,
        ts AS last_ts,
        0 AS inner_us,
        epoch_us(ts) - epoch_us(lag(ts) OVER (PARTITION BY session_id ORDER BY ts)) AS gap_us
    FROM events
    WHERE session_id IN (SELECT session_id FROM shared_sessions)
),

gaps AS (
    SELECT * FROM bucket_gaps
    UNION ALL
    SELECT * FROM event_gaps
)

SELECT
    g.session_id,
    g.user_id,
    g.week_start,
    CAST(sum(g.events) AS BIGINT) AS events,
    min(g.first_ts) AS first_ts,
    max(g.last_ts) AS last_ts,
    -- least() skips NULLs, so the session's first event (no gap) must be left out, not capped
    CAST(sum(g.inner_us) + coalesce(sum(least(g.gap_us, s.cap_us)) FILTER (WHERE g.gap_us IS NOT NULL), 0) AS DOUBLE)
        / 60000000 AS active_minutes
FROM gaps AS g
CROSS JOIN settings AS s
GROUP BY g.session_id, g.user_id, g.week_start
