-- kind: incremental_by_week
-- grain: user_id, week_start, dimension, member
-- tags: publish
-- user_week_spend_shares: how each user-week's AI spend splits over the members of the model, tool
-- and repository dimensions (share, summing to 1 over a user-week's members of one dimension); the
-- split waste_by_dimension_week applies to each user-week's spend and waste. By spend per model or
-- tool (by tokens when the user-week has no priced request; equal shares when it has neither), and
-- over repositories by the spend of its sessions, each session's split by its prompts per
-- repository ('(none)': prompts without a repository and sessions without prompts). Read from the
-- feature tables only; an incremental run replaces the weeks it republishes (a session's repository
-- shares change only with its prompts, whose every week the features rebuild).

WITH
session_usage AS (
    -- per session, week, model and client (features: session_spend)
    SELECT user_id, week_start, session_id, model, tool, cost_usd, tokens
    FROM session_spend
    WHERE republished_week(week_start)
),

session_repos AS (
    -- each session's share of prompts per repository (features: session_repo_prompts)
    SELECT session_id, repo, sum(prompts) / sum(sum(prompts)) OVER (PARTITION BY session_id) AS prompt_share
    FROM session_repo_prompts
    WHERE session_id IN (SELECT session_id FROM session_usage)
    GROUP BY session_id, repo
),

request_members AS (
    SELECT user_id, week_start, 'model' AS dimension, model AS member, cost_usd, tokens FROM session_usage
    UNION ALL
    SELECT user_id, week_start, 'tool', tool, cost_usd, tokens FROM session_usage
    UNION ALL
    SELECT u.user_id, u.week_start, 'repository', coalesce(r.repo, '(none)'),
           u.cost_usd * coalesce(r.prompt_share, 1.0), u.tokens * coalesce(r.prompt_share, 1.0)
    FROM session_usage AS u
    LEFT JOIN session_repos AS r USING (session_id)
)

SELECT
    user_id, week_start, dimension, member,
    CASE
        WHEN sum(cost_usd) OVER user_week > 0 THEN cost_usd / sum(cost_usd) OVER user_week
        WHEN sum(tokens) OVER user_week > 0 THEN tokens / sum(tokens) OVER user_week
        ELSE 1.0 / count(*) OVER user_week
    END AS share
FROM (
    SELECT user_id, week_start, dimension, member, sum(cost_usd) AS cost_usd, CAST(sum(tokens) AS DOUBLE) AS tokens
    FROM request_members
    GROUP BY ALL
)
WINDOW user_week AS (PARTITION BY user_id, week_start, dimension)
