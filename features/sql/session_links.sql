-- session_links: one row per (session_id, change_id) that the session fed, with how we know.
-- explicit_session_id: the change names the session; explicit_commit: the change merges a commit
-- the assistant made in the session; inferred_author_repo_window: same author and repository,
-- merged between the session's start and `link_window_hours` after its end.
-- weight splits each session's tokens over its changes so nothing is attributed twice.

WITH
sessions AS (SELECT * FROM sessions),
raw_changes AS (SELECT * FROM changes),
changes AS (SELECT * FROM change_deployments),
prompts AS (SELECT session_id, commit_sha FROM invocations WHERE commit_sha IS NOT NULL),

named_sessions AS (
    SELECT change_id, unnest(ai_session_ids) AS session_id
    FROM raw_changes
),

merged_commits AS (
    SELECT change_id, lower(unnest(commit_shas)) AS commit_sha
    FROM raw_changes
),

explicit_session AS (
    SELECT named.session_id, named.change_id, 'explicit_session_id' AS method, 1 AS priority, 1.0 AS confidence
    FROM named_sessions AS named
    JOIN sessions USING (session_id)
),

explicit_commit AS (
    SELECT DISTINCT prompts.session_id, merged.change_id, 'explicit_commit' AS method, 2 AS priority, 1.0 AS confidence
    FROM prompts
    JOIN merged_commits AS merged ON merged.commit_sha = lower(prompts.commit_sha)
),

session_repos AS (
    SELECT session_id, user_id, started_at, ended_at, unnest(repos) AS repo
    FROM sessions
),

inferred AS (
    SELECT
        s.session_id,
        c.change_id,
        'inferred_author_repo_window' AS method,
        3 AS priority,
        0.3 + 0.4 * (1 - greatest(epoch(c.merged_at - s.ended_at) / 3600.0, 0) / getvariable('link_window_hours')) AS confidence
    FROM session_repos AS s
    JOIN changes AS c
        ON c.author_id = s.user_id
        AND c.repo = s.repo
        AND c.merged_at >= s.started_at
        AND c.merged_at <= s.ended_at + to_microseconds(CAST(getvariable('link_window_hours') * 3600e6 AS BIGINT))
),

candidates AS (
    SELECT * FROM explicit_session
    UNION ALL SELECT * FROM explicit_commit
    UNION ALL SELECT * FROM inferred
),

pairs AS (
    -- fixed-size aggregate states only (no lists or strings), so the GROUP BY spills to disk
    -- under the memory limit instead of failing
    SELECT
        session_id,
        change_id,
        CASE min(priority) WHEN 1 THEN 'explicit_session_id' WHEN 2 THEN 'explicit_commit'
            ELSE 'inferred_author_repo_window' END AS method,
        list_filter([
            CASE WHEN bool_or(priority = 2) THEN 'explicit_commit' END,
            CASE WHEN bool_or(priority = 1) THEN 'explicit_session_id' END,
            CASE WHEN bool_or(priority = 3) THEN 'inferred_author_repo_window' END
        ], lambda method: method IS NOT NULL) AS methods,
        max(confidence) AS confidence
    FROM candidates
    GROUP BY session_id, change_id
)

SELECT
    pairs.session_id,
    pairs.change_id,
    pairs.method,
    pairs.methods,
    pairs.confidence,
    epoch(changes.merged_at - sessions.ended_at) / 3600.0 AS lag_hours,
    pairs.confidence / sum(pairs.confidence) OVER (PARTITION BY pairs.session_id) AS weight,
    sessions.week_start  -- the session's week: the partition an incremental run rebuilds
FROM pairs
JOIN sessions USING (session_id)
JOIN changes USING (change_id)
