-- kind: full
-- grain: week_start, dimension, member
-- temporary: true
-- tags: report_root_cause
-- report_root_cause: one row per (week_start, dimension, member) of waste_root_cause, with the
-- team finance sees: a team that report_user_weeks merged into 'other' (under `min_team_size`
-- people) is summed into 'other' here too, so no small team is named. Cents are summed, so each
-- (week, dimension) still adds up to the week's change exactly; rank is recomputed.

WITH
root_cause AS (SELECT * FROM waste_root_cause),
reported_teams AS (SELECT DISTINCT team FROM report_user_weeks),

renamed AS (
    SELECT root_cause.*,
           CASE WHEN dimension = 'team' AND member NOT IN (SELECT team FROM reported_teams) THEN 'other'
                ELSE member END AS reported_member
    FROM root_cause
),

merged AS (
    SELECT
        week_start, iso_week, complete, dimension, reported_member AS member,
        sum(change_cents) AS change_cents,
        sum(wasted_cost_usd) AS wasted_cost_usd,
        sum(previous_wasted_cost_usd) AS previous_wasted_cost_usd,
        any_value(week_change_cents) AS week_change_cents,
        sum(flagged_user_weeks) AS flagged_user_weeks,
        sum(people_with_waste) AS people_with_waste,
        nullif(array_to_string(list_sort(list_distinct(flatten(
            list(string_split(waste_detectors, ', ')) FILTER (WHERE waste_detectors IS NOT NULL)))), ', '), '') AS waste_detectors
    FROM renamed
    GROUP BY ALL
)

SELECT
    week_start,
    iso_week,
    complete,
    dimension,
    member,
    row_number() OVER (PARTITION BY week_start, dimension ORDER BY abs(change_cents) DESC, member) AS rank,
    CAST(change_cents / 100 AS DECIMAL(18, 2)) AS change_usd,
    CAST(wasted_cost_usd AS DECIMAL(18, 2)) AS wasted_cost_usd,
    CAST(previous_wasted_cost_usd AS DECIMAL(18, 2)) AS previous_wasted_cost_usd,
    CAST(week_change_cents / 100 AS DECIMAL(18, 2)) AS week_change_usd,
    CAST(flagged_user_weeks AS BIGINT) AS flagged_user_weeks,
    CAST(people_with_waste AS BIGINT) AS people_with_waste,
    waste_detectors
FROM merged
