-- kind: full
-- grain: user_id, week_start
-- tags: publish
-- shipped_work: one row for every (user_id, week_start) with AI usage or AI-assisted work that
-- reached production: the honest leaderboard's measure (docs/leaderboard.md).
--
-- A unit of shipped work is a deployed change, sized by its lines against the company's typical
-- (median) deployed change and weighted by the evidence that AI fed it:
--   units = ai_share x lines_changed / median deployed change
-- Lines add up, so one piece of work split into many tiny changes, or deployed many times, earns
-- what shipping it whole earns. A person-week earns at most the company's 99th percentile of
-- person-weeks (a cap on the sum, so splitting still earns nothing; it keeps one huge generated
-- change, a lock file or vendored code, from buying the top). ai_share is the credit of the change's authoring sessions (explicit links 1,
-- a time window only what the kept lines show; review sessions do not make a change AI-written),
-- at most 1. A change whose size or whose every link's credit is unknown earns no units and is
-- counted apart (unknown is not zero, and not a guess). The work counts in the week it first
-- deployed, to its author. A week flagged for gaming is held back: its units show in held_units,
-- not in shipped_units, until an analyst judges the flag legitimate (the next run then counts it),
-- so no tactic, splitting included, climbs the board while it is caught.

WITH
changes AS (SELECT * FROM change_deployments WHERE deployed),
links AS (SELECT * FROM session_links WHERE method <> 'inferred_review_window' AND method <> 'explicit_review'),
scores AS (SELECT user_id, team, org, week_start, tokens, cost_usd, wasted_cost_usd, flagged FROM user_week_scores),
directory AS (SELECT user_id, team, org FROM people),

typical AS (
    SELECT median(lines_changed) AS median_lines
    FROM changes
    WHERE lines_changed IS NOT NULL
),

ai_changes AS (
    SELECT
        changes.change_id,
        changes.author_id AS user_id,
        CAST(date_trunc('week', changes.first_deployed_at) AS DATE) AS week_start,
        changes.lines_changed,
        -- NULL when every link's credit is unknown (least() alone would skip the NULL)
        CASE WHEN sum(links.credit) IS NOT NULL THEN least(sum(links.credit), 1.0) END AS ai_share
    FROM changes
    JOIN links USING (change_id)
    GROUP BY ALL
),

sized AS (
    SELECT
        ai_changes.*,
        ai_changes.ai_share * ai_changes.lines_changed / greatest(typical.median_lines, 1) AS units
    FROM ai_changes, typical
),

uncapped AS (
    SELECT
        user_id,
        week_start,
        count(*) FILTER (WHERE units > 0) AS ai_deployed_changes,
        coalesce(sum(units), 0.0) AS units,
        coalesce(sum(lines_changed * ai_share) FILTER (WHERE units IS NOT NULL), 0.0) AS ai_shipped_lines,
        count(*) FILTER (WHERE units IS NULL) AS changes_of_unknown_evidence
    FROM sized
    GROUP BY ALL
),

per_person AS (
    SELECT uncapped.* EXCLUDE (units),
           least(uncapped.units, (SELECT quantile_disc(units, 0.99) FROM uncapped WHERE units > 0)) AS shipped_units
    FROM uncapped
)

SELECT
    user_id,
    week_start,
    coalesce(scores.team, directory.team, 'unassigned') AS team,
    coalesce(scores.org, directory.org, 'unassigned') AS org,
    CASE WHEN coalesce(scores.flagged, false) THEN 0.0 ELSE coalesce(per_person.shipped_units, 0.0) END AS shipped_units,
    CASE WHEN coalesce(scores.flagged, false) THEN coalesce(per_person.shipped_units, 0.0) ELSE 0.0 END AS held_units,
    coalesce(per_person.ai_deployed_changes, 0) AS ai_deployed_changes,
    coalesce(per_person.ai_shipped_lines, 0.0) AS ai_shipped_lines,
    coalesce(per_person.changes_of_unknown_evidence, 0) AS changes_of_unknown_evidence,
    coalesce(scores.tokens, 0) AS tokens,
    coalesce(scores.cost_usd, 0.0) AS cost_usd,
    coalesce(scores.wasted_cost_usd, 0.0) AS wasted_cost_usd,
    coalesce(scores.flagged, false) AS flagged,
    -- what the week's AI usage cost per unit it shipped, held or not
    scores.tokens / nullif(per_person.shipped_units, 0) AS tokens_per_unit,
    scores.cost_usd / nullif(per_person.shipped_units, 0) AS cost_per_unit
FROM per_person
FULL JOIN scores USING (user_id, week_start)
LEFT JOIN directory USING (user_id)
