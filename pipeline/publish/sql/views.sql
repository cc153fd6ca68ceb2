-- kind: script
-- tags: publish
-- Analysts' views over the published tables. Documented in docs/analysts.md.
{% import 'leaderboard.jinja' as leaderboard %}

-- flagged_sessions: flagged sessions, most suspicious first, with their links.
CREATE OR REPLACE VIEW flagged_sessions AS
SELECT flag_id, session_id, user_id, team, started_at, ended_at, tokens, cost_usd, wasted_cost_usd, score,
       severity, detectors, reasons, linked_change_ids, deployed, verdict, evidence,
       -- the file `goodhart explain FLAG_ID --db FILE --out DIR` writes (pipeline.publish.case_file.case_file_name)
       'case-' || regexp_replace(flag_id, '[^A-Za-z0-9_.-]', '-', 'g') || '.html' AS case_file
FROM session_scores
WHERE flagged
ORDER BY score DESC;

-- flagged_user_weeks: flagged user-weeks, most suspicious first.
CREATE OR REPLACE VIEW flagged_user_weeks AS
SELECT flag_id, user_id, team, org, week_start, tokens, cost_usd, wasted_cost_usd, merged_changes, deployed_changes,
       score, severity, detectors, reasons, verdict, evidence,
       -- the file `goodhart explain FLAG_ID --db FILE --out DIR` writes (pipeline.publish.case_file.case_file_name)
       'case-' || regexp_replace(flag_id, '[^A-Za-z0-9_.-]', '-', 'g') || '.html' AS case_file
FROM user_week_scores
WHERE flagged
ORDER BY score DESC;

-- wasted_compute_by_team_week: AI spend and the part of it the evidence says produced nothing.
CREATE OR REPLACE VIEW wasted_compute_by_team_week AS
SELECT team, org, week_start,
       count(*) AS people,
       sum(tokens) AS tokens,
       sum(cost_usd) AS cost_usd,
       sum(wasted_cost_usd) AS wasted_cost_usd,
       sum(wasted_cost_usd) / nullif(sum(cost_usd), 0) AS wasted_share,
       count(*) FILTER (WHERE flagged) AS flagged_user_weeks
FROM user_week_scores
GROUP BY team, org, week_start
ORDER BY week_start, team;

-- links: why each session counts as productive, with the change and its deployment.
CREATE OR REPLACE VIEW links AS
SELECT l.session_id, s.user_id, l.change_id, l.method, l.methods, l.confidence, l.credit, l.evidence, l.lag_hours, l.weight,
       c.repo, c.merged_at, c.deployed, c.first_deployment_id, c.first_deployed_at
FROM session_links AS l
JOIN sessions AS s USING (session_id)
JOIN change_deployments AS c USING (change_id);

-- honest_leaderboard: AI-assisted shipped work per team and week (docs/leaderboard.md), from
-- shipped_work; most shipped work first. People are ranked only on request (`goodhart leaderboard
-- --by person` reads shipped_work).
CREATE OR REPLACE VIEW honest_leaderboard AS
SELECT week_start, team, org,
       rank() OVER (PARTITION BY week_start ORDER BY sum(shipped_units) DESC) AS rank,
{{ leaderboard.shipped_work_sums(per_person=true) }}
FROM shipped_work
GROUP BY week_start, team, org
ORDER BY week_start, rank, team;
