-- kind: full
-- grain: deployment_id
-- deployment_attribution: one row per successful deployment (deployment_id) with the AI tokens and
-- cost of the changes it shipped first. A change shipped again later is not counted again.

WITH
deployments AS (SELECT deployment_id, repo, deployed_at FROM deployments WHERE status = 'success'),
attribution AS (SELECT * FROM change_attribution)

SELECT
    deployments.deployment_id,
    deployments.repo,
    deployments.deployed_at,
    count(attribution.change_id) AS ai_changes_first_shipped,
    coalesce(sum(attribution.attributed_tokens), 0) AS attributed_tokens,
    coalesce(sum(attribution.attributed_cost_usd), 0) AS attributed_cost_usd
FROM deployments
LEFT JOIN attribution ON attribution.first_deployment_id = deployments.deployment_id
GROUP BY ALL
