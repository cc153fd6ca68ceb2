-- kind: incremental_by_week
-- grain: session_id
-- sessions: one row per AI session (session_id), from token_usage and invocations (span and active
-- time from session_weeks, repositories from session_repo_prompts: its session-repository pairs
-- are few, where a list(DISTINCT repo) over every prompt keeps a list per session in memory).
-- A session's person is the user of its first event; team and org come from people.

WITH
requests AS (SELECT * FROM token_usage),
prompts AS (SELECT * FROM invocations),
weeks AS (SELECT * FROM session_weeks),
directory AS (SELECT user_id, team, org FROM people),
repo_prompts AS (SELECT session_id, repo FROM session_repo_prompts WHERE repo IS NOT NULL),

span AS (
    SELECT
        session_id,
        arg_min(user_id, first_ts) AS user_id,
        min(first_ts) AS started_at,
        max(last_ts) AS ended_at,
        sum(active_minutes) AS active_minutes
    FROM weeks
    GROUP BY session_id
),

request_totals AS (
    SELECT
        session_id,
        count(*) AS requests,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        sum(cache_read_tokens) AS cache_read_tokens,
        sum(cache_write_tokens) AS cache_write_tokens,
        coalesce(sum(cost_usd), 0) AS cost_usd,
        count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_requests
    FROM requests
    GROUP BY session_id
),

session_repos AS (
    SELECT session_id, list_sort(list(DISTINCT repo)) AS repos
    FROM repo_prompts
    GROUP BY session_id
),

prompt_totals AS (
    SELECT
        session_id,
        count(*) AS prompts,
        sum(lines_accepted) AS lines_accepted,  -- NULL when no prompt reports lines: unknown, not 0
        sum(tool_calls) AS tool_calls,  -- NULL when no prompt reports tool calls: unknown, not 0
        list_sort(list(DISTINCT commit_sha) FILTER (WHERE commit_sha IS NOT NULL)) AS commit_shas,
        bool_and(repo_unreported) AS repo_unreported
    FROM prompts
    GROUP BY session_id
)

SELECT
    span.session_id,
    span.user_id,
    coalesce(directory.team, 'unassigned') AS team,
    coalesce(directory.org, 'unassigned') AS org,
    span.started_at,
    span.ended_at,
    iso_week(span.started_at) AS week_start,
    epoch(span.ended_at - span.started_at) / 60.0 AS duration_minutes,
    span.active_minutes,
    coalesce(r.requests, 0) AS requests,
    coalesce(p.prompts, 0) AS prompts,
    coalesce(r.input_tokens, 0) AS input_tokens,
    coalesce(r.output_tokens, 0) AS output_tokens,
    coalesce(r.cache_read_tokens, 0) AS cache_read_tokens,
    coalesce(r.cache_write_tokens, 0) AS cache_write_tokens,
    coalesce(r.input_tokens + r.output_tokens + r.cache_read_tokens + r.cache_write_tokens, 0) AS tokens,
    coalesce(r.cost_usd, 0) AS cost_usd,
    coalesce(r.unpriced_requests, 0) AS unpriced_requests,
    coalesce(sr.repos, []) AS repos,
    p.lines_accepted,
    p.tool_calls,
    coalesce(p.commit_shas, []) AS commit_shas,
    -- the session's repository is unknown: its sources report none (no repo column) and no commit
    -- of its named one (pipeline/ingest/reconcile.py); not the same as "no repository context"
    coalesce(p.repo_unreported AND sr.repos IS NULL, false) AS repo_unreported
FROM span
LEFT JOIN request_totals AS r USING (session_id)
LEFT JOIN prompt_totals AS p USING (session_id)
LEFT JOIN session_repos AS sr USING (session_id)
LEFT JOIN directory ON directory.user_id = span.user_id
