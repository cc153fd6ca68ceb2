-- kind: full
-- grain: dimension, member, week_start
-- tags: publish
-- waste_by_dimension_week: one row per (dimension, member, week_start) with usage: the AI spend,
-- wasted cost and flagged user-weeks of each team, org, model, tool and repository in each ISO
-- week (Monday, UTC). Built at publish (pipeline/publish/root_cause.py) with the report's rounding
-- macros (report_macros.sql). Documented in docs/analysts.md.
-- Each user-week's spend and wasted cost is split over the members of a dimension: all of it to
-- its team and its org; over models, tools and repositories by user_week_spend_shares
-- ('unattributed' when it has no request, as report_user_week_models does).
-- wasted_cents: the week's wasted cost in whole cents by largest remainder, twice: the weeks add
-- up to the database total rounded once (as wasted_by_week.csv), and the members of each
-- dimension add up to their week exactly. So every dimension's week-over-week changes add up to
-- the week's change to the cent (waste_root_cause). complete: as report_wasted_by_week.sql.

WITH
scores AS (
    SELECT user_id, coalesce(team, 'unassigned') AS team, coalesce(org, 'unassigned') AS org, week_start,
           coalesce(cost_usd, 0) AS cost_usd, coalesce(wasted_cost_usd, 0) AS wasted_cost_usd,
           coalesce(flagged, false) AS flagged, coalesce(detectors, []) AS detectors
    FROM user_week_scores
),
requests AS (SELECT ts FROM token_usage),  -- only the span of the data (a scan of one column)

request_shares AS (
    -- each user-week's spend split over models, tools and repositories
    SELECT user_id, week_start, dimension, member, share FROM user_week_spend_shares
),

user_week_members AS (
    SELECT user_id, week_start, 'team' AS dimension, team AS member, 1.0 AS share FROM scores
    UNION ALL
    SELECT user_id, week_start, 'org', org, 1.0 FROM scores
    UNION ALL
    SELECT scores.user_id, scores.week_start, dimensions.dimension,
           coalesce(request_shares.member, 'unattributed'), coalesce(request_shares.share, 1.0)
    FROM scores
    CROSS JOIN (SELECT unnest(['model', 'tool', 'repository']) AS dimension) AS dimensions
    LEFT JOIN request_shares USING (user_id, week_start, dimension)
),

split AS (
    SELECT m.dimension, m.member, m.week_start, m.user_id, s.flagged, s.detectors,
           s.cost_usd * m.share AS cost_usd, s.wasted_cost_usd * m.share AS wasted_cost_usd
    FROM user_week_members AS m
    JOIN scores AS s USING (user_id, week_start)
),

waste_detectors AS (
    SELECT dimension, member, week_start,
           string_agg(DISTINCT detector, ', ' ORDER BY detector) AS waste_detectors
    FROM (SELECT dimension, member, week_start, unnest(detectors) AS detector FROM split WHERE wasted_cost_usd > 0)
    GROUP BY ALL
),

member_weeks AS (
    SELECT
        dimension, member, week_start,
        count(DISTINCT user_id) AS people,
        count(DISTINCT user_id) FILTER (WHERE wasted_cost_usd > 0) AS people_with_waste,
        count(*) FILTER (WHERE flagged) AS flagged_user_weeks,
        sum(cost_usd) AS cost_usd,
        sum(wasted_cost_usd) AS wasted_cost_usd
    FROM split
    GROUP BY ALL
),

total AS (SELECT CAST(round(coalesce(sum(wasted_cost_usd), 0) * 100) AS BIGINT) AS wasted_cents FROM scores),

week_cents AS (
    -- the weeks' wasted cents by largest remainder over the database total (as wasted_by_week.csv)
    SELECT
        week_start,
        report_floor_cents(wasted_cost_usd)
            + CASE WHEN row_number() OVER (ORDER BY report_remainder(wasted_cost_usd) DESC, week_start)
                        <= total.wasted_cents - sum(report_floor_cents(wasted_cost_usd)) OVER () THEN 1 ELSE 0 END
            AS week_wasted_cents
    FROM (SELECT week_start, sum(wasted_cost_usd) AS wasted_cost_usd FROM scores GROUP BY week_start)
    CROSS JOIN total
),

member_cents AS (
    -- each member's wasted cents by largest remainder over its week's
    SELECT
        member_weeks.*,
        week_cents.week_wasted_cents,
        report_floor_cents(wasted_cost_usd)
            + CASE WHEN row_number() OVER dimension_week
                        <= week_cents.week_wasted_cents - sum(report_floor_cents(wasted_cost_usd)) OVER (PARTITION BY dimension, week_start)
                   THEN 1 ELSE 0 END
            AS wasted_cents
    FROM member_weeks
    JOIN week_cents USING (week_start)
    WINDOW dimension_week AS (PARTITION BY dimension, week_start ORDER BY report_remainder(wasted_cost_usd) DESC, member)
),

span AS (SELECT min(ts) AS data_start, max(ts) AS data_end FROM requests)

SELECT
    member_cents.dimension,
    member_cents.member,
    member_cents.week_start,
    span.data_end IS NULL OR (CAST(span.data_start AS DATE) <= member_cents.week_start
                              AND span.data_end >= CAST(member_cents.week_start + 7 AS TIMESTAMP)) AS complete,
    member_cents.people,
    member_cents.people_with_waste,
    member_cents.flagged_user_weeks,
    CAST(round(member_cents.cost_usd, 2) AS DECIMAL(18, 2)) AS cost_usd,
    CAST(member_cents.wasted_cents AS BIGINT) AS wasted_cents,
    CAST(member_cents.wasted_cents / 100 AS DECIMAL(18, 2)) AS wasted_cost_usd,
    CAST(member_cents.week_wasted_cents AS BIGINT) AS week_wasted_cents,
    member_cents.wasted_cost_usd / nullif(member_cents.cost_usd, 0) AS wasted_share,
    waste_detectors.waste_detectors
FROM member_cents
CROSS JOIN span
LEFT JOIN waste_detectors USING (dimension, member, week_start)
