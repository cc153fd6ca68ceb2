-- kind: query
-- grain: week_start
-- affected_weeks: one row per ISO week (week_start) whose feature rows the input rows loaded since
-- the last feature build can change (before closing over sessions that span weeks; see
-- features/incremental.py). Reads the feature tables as the last build left them, the raw tables
-- after this run's load, and __previous_change_deployments (change_deployments before this build).
-- New rows are those of files with file_id > getvariable('since_file_id').

WITH
new_requests AS (SELECT session_id, ts FROM token_usage WHERE file_id > getvariable('since_file_id')),
new_prompts AS (SELECT session_id, ts FROM invocations WHERE file_id > getvariable('since_file_id')),
built_sessions AS (SELECT session_id, user_id, started_at, ended_at FROM sessions),
built_session_weeks AS (SELECT session_id, week_start FROM session_weeks),
built_links AS (SELECT session_id, change_id FROM session_links),
changes_now AS (SELECT * FROM change_deployments),
changes_before AS (SELECT * FROM __previous_change_deployments),
raw_changes AS (SELECT change_id, ai_session_ids, commit_shas FROM changes),
raw_reviews AS (SELECT review_id, change_id, reviewer_id, submitted_at, ai_session_ids, file_id FROM reviews),

touched_sessions AS (
    SELECT DISTINCT session_id FROM new_requests
    UNION
    SELECT DISTINCT session_id FROM new_prompts
),

touched_spans AS (
    -- every week a session with new events spans, old events included: the weeks the last build
    -- saw it in (session_weeks holds every event loaded before) and the new events' weeks, so no
    -- run scans the whole history of raw events
    SELECT session_id, min(week_start) AS first_week, max(week_start) AS last_week
    FROM (
        SELECT session_id, week_start FROM built_session_weeks
        WHERE session_id IN (SELECT session_id FROM touched_sessions)
        UNION ALL
        SELECT session_id, iso_week(ts) FROM new_requests
        UNION ALL
        SELECT session_id, iso_week(ts) FROM new_prompts
    )
    GROUP BY session_id
),

changed_rows AS (
    -- one join by change instead of two EXCEPTs over every column: each change whose row is new,
    -- gone or different, with both versions (a side it lacks is a row of NULLs)
    SELECT now, before
    FROM changes_now AS now
    FULL JOIN changes_before AS before ON now.change_id = before.change_id
    WHERE now IS DISTINCT FROM before
),

changed_changes AS (
    -- new changes, and changes whose merge, author, repository or deployment state moved: as they
    -- are now and as they were
    SELECT now.change_id, now.author_id, now.repo, now.merged_at FROM changed_rows WHERE now.change_id IS NOT NULL
    UNION
    SELECT before.change_id, before.author_id, before.repo, before.merged_at FROM changed_rows
    WHERE before.change_id IS NOT NULL
),

deploying_repos_changed AS (
    -- repositories that started or stopped having a deployed change: every merge week of theirs
    -- counts its merged changes into a deploying repository anew
    (SELECT repo FROM changes_now WHERE deployed EXCEPT SELECT repo FROM changes_before WHERE deployed)
    UNION
    (SELECT repo FROM changes_before WHERE deployed EXCEPT SELECT repo FROM changes_now WHERE deployed)
),

linkable_sessions AS (
    -- sessions a changed change is, or may now be, linked to (any repository: a superset)
    SELECT session_id FROM built_links WHERE change_id IN (SELECT change_id FROM changed_changes)
    UNION
    SELECT s.session_id
    FROM changed_changes AS c
    JOIN built_sessions AS s
        ON s.user_id = c.author_id
        AND in_window(c.merged_at, s.started_at, s.ended_at, getvariable('link_window_hours'))
    UNION
    SELECT unnest(ai_session_ids) FROM raw_changes WHERE change_id IN (SELECT change_id FROM changed_changes)
    UNION
    SELECT session_id
    FROM invocations
    WHERE lower(commit_sha) IN (
        SELECT lower(unnest(commit_shas)) FROM raw_changes WHERE change_id IN (SELECT change_id FROM changed_changes)
    )
),

reviewed AS (
    -- new reviews, reviews of changed changes, and reviews naming a session with new events (a
    -- review that names a session we hold takes the window credit of the person's other sessions):
    -- their sessions may link through the review
    SELECT * FROM raw_reviews
    WHERE file_id > getvariable('since_file_id') OR change_id IN (SELECT change_id FROM changed_changes)
        OR review_id IN (
            SELECT review_id FROM (SELECT review_id, unnest(ai_session_ids) AS session_id FROM raw_reviews)
            WHERE session_id IN (SELECT session_id FROM touched_sessions)
        )
),

review_sessions AS (
    SELECT unnest(ai_session_ids) AS session_id FROM reviewed
    UNION
    SELECT s.session_id
    FROM reviewed AS r
    JOIN built_sessions AS s
        ON s.user_id = r.reviewer_id
        AND in_window(r.submitted_at, s.started_at, s.ended_at, getvariable('review_window_hours'))
)

SELECT DISTINCT week_start FROM (
    SELECT iso_week(ts) AS week_start FROM new_requests
    UNION ALL
    SELECT iso_week(ts) FROM new_prompts
    UNION ALL
    SELECT CAST(unnest(generate_series(first_week, last_week, INTERVAL 7 DAY)) AS DATE) FROM touched_spans
    UNION ALL
    SELECT iso_week(merged_at) FROM changed_changes WHERE merged_at IS NOT NULL
    UNION ALL
    SELECT iso_week(merged_at) FROM changes_now
    WHERE merged_at IS NOT NULL AND repo IN (SELECT repo FROM deploying_repos_changed)
    UNION ALL
    -- the first deployed change of all (or the loss of the last) makes that count known (unknown) in every week
    SELECT week_start FROM user_week_features
    WHERE (SELECT coalesce(bool_or(deployed), false) FROM changes_now)
        <> (SELECT coalesce(bool_or(deployed), false) FROM changes_before)
    UNION ALL
    -- every week a linkable session spans: its link and outcome reach its tokens in each
    SELECT week_start FROM built_session_weeks WHERE session_id IN (SELECT session_id FROM linkable_sessions)
    UNION ALL
    SELECT week_start FROM built_session_weeks WHERE session_id IN (SELECT session_id FROM review_sessions)
)
