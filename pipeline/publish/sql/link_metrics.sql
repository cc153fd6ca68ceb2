-- kind: query
-- grain: metric
-- link_metrics: one row per metric, with its value under `goodhart` (the shape of the other
-- evaluation tables): how a run's links agree with a generated world's true links (true_links,
-- a frame of session_id x change_id registered by pipeline/ops/evaluate.py).

WITH
truth AS (SELECT * FROM true_links),
links AS (SELECT * FROM session_links),
changes AS (SELECT change_id, deployed FROM change_deployments),
sessions AS (SELECT session_id, deployed FROM session_scores),

truly_deployed AS (
    SELECT DISTINCT truth.session_id FROM truth JOIN changes USING (change_id) WHERE changes.deployed
),

outcome AS (
    SELECT
        count(*) FILTER (WHERE s.deployed AND t.session_id IS NOT NULL) AS true_positive,
        count(*) FILTER (WHERE s.deployed AND t.session_id IS NULL) AS false_positive,
        count(*) FILTER (WHERE s.deployed IS NOT DISTINCT FROM false AND t.session_id IS NOT NULL) AS false_negative,
        count(*) FILTER (WHERE s.deployed IS NULL) AS unknown
    FROM sessions AS s
    LEFT JOIN truly_deployed AS t USING (session_id)
),

by_method AS (
    SELECT
        'link_precision:' || links.method AS metric,
        count(truth.session_id) FILTER (WHERE links.credit IS DISTINCT FROM 0) / nullif(count(*) FILTER (WHERE links.credit IS DISTINCT FROM 0), 0) AS goodhart
    FROM links
    LEFT JOIN truth USING (session_id, change_id)
    GROUP BY links.method
),

recalled AS (
    SELECT count(links.session_id) / nullif(count(*), 0) AS recall
    FROM truth
    LEFT JOIN links ON links.session_id = truth.session_id AND links.change_id = truth.change_id
        AND links.credit IS DISTINCT FROM 0
)

SELECT 'deployed_precision' AS metric, true_positive / nullif(true_positive + false_positive, 0) AS goodhart FROM outcome
UNION ALL SELECT 'deployed_recall', true_positive / nullif(true_positive + false_negative, 0) FROM outcome
UNION ALL SELECT 'deployed_unknown', CAST(unknown AS DOUBLE) FROM outcome
UNION ALL SELECT 'link_recall', recall FROM recalled
UNION ALL SELECT metric, goodhart FROM (SELECT * FROM by_method ORDER BY metric)
