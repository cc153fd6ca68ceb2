-- kind: full
-- grain: feature, scope
-- temporary: true
-- tags: case_file
-- case_features: each peer-compared feature of the person's week (for a session flag, the week of
-- the session) against their own history and their team's, org's and company's distribution that
-- week: one row per (feature, scope) with the value, the scope's median and the robust z (NULL:
-- no baseline, e.g. no earlier weeks of their own). `contribution` is the feature's largest part in
-- the flag's evidence (NULL: it was not part of it).
WITH
flag AS (FROM case_flag),
week AS (
    SELECT p.* EXCLUDE (user_id, team, org, week_start)
    FROM user_week_peer_features AS p JOIN flag USING (user_id, week_start)
),
cells AS (UNPIVOT (SELECT COLUMNS(*)::DOUBLE FROM week) ON COLUMNS(*) INTO NAME name VALUE value),
features AS (SELECT DISTINCT feature FROM peer_baselines),
scopes AS (SELECT unnest(['own', 'team', 'org', 'company']) AS scope, generate_subscripts(['own', 'team', 'org', 'company'], 1) AS scope_order),
evidence AS (
    SELECT e.feature, max(e.contribution) AS contribution
    FROM flag, unnest(flag.evidence) AS t(e) GROUP BY ALL
)
SELECT
    features.feature,
    scopes.scope,
    scopes.scope_order,
    value_cell.value,
    median_cell.value AS median,
    z_cell.value AS z,
    evidence.contribution
FROM features
CROSS JOIN scopes
LEFT JOIN cells AS value_cell ON value_cell.name = features.feature
LEFT JOIN cells AS median_cell ON median_cell.name = features.feature || '_' || scopes.scope || '_median'
LEFT JOIN cells AS z_cell ON z_cell.name = features.feature || '_' || scopes.scope || '_z'
LEFT JOIN evidence USING (feature)
WHERE value_cell.name IS NOT NULL
