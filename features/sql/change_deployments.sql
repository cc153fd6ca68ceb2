-- change_deployments: one row per change (change_id), with whether and when it reached production.
-- Deployed means a `success` deployment lists the change; failed and rolled-back ones do not
-- count, a later successful one does.

WITH
raw_changes AS (SELECT * FROM changes),
raw_deployments AS (SELECT * FROM deployments),

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
    coalesce(c.lines_added, 0) + coalesce(c.lines_deleted, 0) AS lines_changed,
    coalesce(c.lines_added, 0) + coalesce(c.lines_deleted, 0) <= getvariable('tiny_change_lines') AS is_tiny,
    coalesce(d.deployment_attempts, 0) AS deployment_attempts,
    coalesce(d.failed_deployments, 0) AS failed_deployments,
    d.first_success.at AS first_deployed_at,
    d.first_success.id AS first_deployment_id,
    d.first_success IS NOT NULL AS deployed
FROM raw_changes AS c
LEFT JOIN per_change AS d USING (change_id)
