-- kind: full
-- grain: change_id
-- change_deployments: one row per change (change_id), with whether and when it reached production,
-- and whether it declares the AI sessions that fed it.
-- Deployed means a `success` deployment lists the change; failed and rolled-back ones do not
-- count, a later successful one does. lines_changed is NULL when the source reports neither
-- added nor deleted lines (unknown, not an empty change). names_ai_sessions: the change names a
-- session we hold (a trailer); merges_ai_commits: it merges a commit an assistant made in a
-- session we hold. Such a change has said which sessions fed it (session_links).
-- lists_all_commits: commit_shas names every commit the change merged (scope `all`, the default),
-- not only the branch heads; listed_commits: how many it names (NULL when none is reported).
-- author_ai_lines: lines an AI tool wrote in the change's commits by its author, as the tool's
-- own code tracking reports them (`ai_commits`, e.g. Cursor); NULL when no commit is tracked.
-- evidenced_lines: lines kept in the change's repository by the sessions the change itself says
-- fed it (it names them, or merges a commit they made), a session's lines shared equally among
-- the changes in that repository that say so; NULL when no such session reports lines. What
-- is left of lines_added is all a session linked only by a time window can have written.

WITH
raw_changes AS (SELECT * FROM changes),
raw_deployments AS (SELECT * FROM deployments),
made_commits AS (
    SELECT DISTINCT session_id, lower(commit_sha) AS commit_sha FROM invocations WHERE commit_sha IS NOT NULL
),
assistant_commits AS (SELECT DISTINCT commit_sha FROM made_commits),

named_sessions AS (
    SELECT change_id, unnest(ai_session_ids) AS session_id
    FROM raw_changes
),

merged_commits AS (
    SELECT change_id, lower(unnest(commit_shas)) AS commit_sha
    FROM raw_changes
),

evidence_sessions AS (
    -- (change, session) pairs the change declares, with the change's repository
    SELECT declared.change_id, declared.session_id, c.repo
    FROM (
        SELECT change_id, session_id FROM named_sessions
        UNION
        SELECT merged.change_id, made.session_id FROM merged_commits AS merged JOIN made_commits AS made USING (commit_sha)
    ) AS declared
    JOIN raw_changes AS c USING (change_id)
),

session_repo_lines AS (
    -- reported lines only, every session (one aggregate is cheaper than a semi-join on the ids)
    SELECT session_id, repo, sum(lines_accepted) AS lines_kept
    FROM invocations
    WHERE repo IS NOT NULL AND lines_accepted IS NOT NULL
    GROUP BY ALL
),

evidenced AS (
    SELECT change_id, sum(lines.lines_kept / shares.changes) AS evidenced_lines
    FROM evidence_sessions
    JOIN session_repo_lines AS lines USING (session_id, repo)
    JOIN (SELECT session_id, repo, count(*) AS changes FROM evidence_sessions GROUP BY ALL) AS shares USING (session_id, repo)
    GROUP BY change_id
),

declared AS (
    SELECT change_id, true AS names_ai_sessions, false AS merges_ai_commits
    FROM named_sessions
    -- one IN over the union: two IN tests joined by OR are a mark join each, 8x slower at 10M rows
    WHERE session_id IN (SELECT session_id FROM invocations UNION SELECT session_id FROM token_usage)
    UNION ALL
    SELECT merged.change_id, false, true
    FROM merged_commits AS merged
    WHERE merged.commit_sha IN (SELECT commit_sha FROM assistant_commits)
),

tracked_lines AS (
    SELECT merged.change_id, tracked.user_id, sum(tracked.ai_lines_added) AS ai_lines
    FROM merged_commits AS merged
    JOIN ai_commits AS tracked ON lower(tracked.commit_sha) = merged.commit_sha
    GROUP BY ALL
),

declarations AS (
    SELECT change_id, bool_or(names_ai_sessions) AS names_ai_sessions, bool_or(merges_ai_commits) AS merges_ai_commits
    FROM declared
    GROUP BY change_id
),

shipments AS (
    SELECT deployment_id, deployed_at, status, unnest(change_ids) AS change_id
    FROM raw_deployments
),

per_change AS (
    SELECT
        change_id,
        -- distinct: a deployment that lists the change twice is still one attempt
        count(DISTINCT deployment_id) AS deployment_attempts,
        count(DISTINCT deployment_id) FILTER (WHERE status <> 'success') AS failed_deployments,
        min({'at': deployed_at, 'id': deployment_id}) FILTER (WHERE status = 'success') AS first_success
    FROM shipments
    GROUP BY change_id
)

SELECT
    c.change_id,
    c.repo,
    c.author_id,
    c.merged_at,
    c.lines_added,
    c.lines_deleted,
    CASE WHEN c.lines_added IS NOT NULL OR c.lines_deleted IS NOT NULL
         THEN coalesce(c.lines_added, 0) + coalesce(c.lines_deleted, 0) END AS lines_changed,
    CASE WHEN c.lines_added IS NOT NULL OR c.lines_deleted IS NOT NULL
         THEN coalesce(c.lines_added, 0) + coalesce(c.lines_deleted, 0) <= getvariable('tiny_change_lines') END AS is_tiny,
    coalesce(d.deployment_attempts, 0) AS deployment_attempts,
    coalesce(d.failed_deployments, 0) AS failed_deployments,
    d.first_success.at AS first_deployed_at,
    d.first_success.id AS first_deployment_id,
    d.first_success IS NOT NULL AS deployed,
    coalesce(declarations.names_ai_sessions, false) AS names_ai_sessions,
    coalesce(declarations.merges_ai_commits, false) AS merges_ai_commits,
    coalesce(len(c.commit_shas) > 0 AND coalesce(c.commit_shas_scope, 'all') = 'all', false) AS lists_all_commits,
    nullif(len(c.commit_shas), 0) AS listed_commits,
    tracked_lines.ai_lines AS author_ai_lines,
    evidenced.evidenced_lines
FROM raw_changes AS c
LEFT JOIN per_change AS d USING (change_id)
LEFT JOIN declarations USING (change_id)
LEFT JOIN evidenced USING (change_id)
LEFT JOIN tracked_lines ON tracked_lines.change_id = c.change_id AND tracked_lines.user_id = c.author_id
