-- kind: full
-- grain: detector, feature
-- temporary: true
-- tags: case_file
-- case_contributions: the flag's evidence, one row per (detector, feature): a rule's part of its
-- strength (a session flagged through its week, week_rule:..., or a week of the run-up to a flagged
-- week, run_up:...: the week's score it took), or a model's occlusion attribution (docs/detectors.md), with the value and baseline.
SELECT
    e.detector,
    CASE WHEN e.detector LIKE 'rule:%' OR e.detector LIKE 'week_rule:%' OR e.detector LIKE 'run_up:%'
         THEN 'rule' ELSE 'model' END AS kind,
    e.feature,
    e.value,
    e.baseline,
    e.contribution,
    e.text
FROM case_flag AS flag, unnest(flag.evidence) AS t(e)
