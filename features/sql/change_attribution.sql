-- kind: full
-- grain: change_id
-- change_attribution: one row per change (change_id) that at least one session fed, with the AI
-- tokens and cost attributed to it. Each session's tokens are split over its changes by link
-- weight, so the sum over changes equals the tokens of linked sessions, counted once.

WITH
links AS (SELECT * FROM session_links),
sessions AS (SELECT session_id, tokens, cost_usd FROM sessions),
changes AS (SELECT * FROM change_deployments)

SELECT
    links.change_id,
    count(*) AS sessions,
    sum(sessions.tokens * links.weight) AS attributed_tokens,
    sum(sessions.cost_usd * links.weight) AS attributed_cost_usd,
    any_value(changes.deployed) AS deployed,
    any_value(changes.first_deployment_id) AS first_deployment_id
FROM links
JOIN sessions USING (session_id)
JOIN changes USING (change_id)
GROUP BY links.change_id
