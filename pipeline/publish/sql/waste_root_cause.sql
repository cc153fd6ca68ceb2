-- kind: full
-- grain: week_start, dimension, member
-- tags: publish
-- waste_root_cause: one row per (week_start, dimension, member) that had wasted cost in the week or
-- the week before: the week-over-week change in wasted cost decomposed by each dimension (team,
-- org, model, tool, repository) and ranked by dollar impact. Every ISO week but the first of the
-- data is compared with the calendar week before it (a week without usage counts zero).
-- change_cents of the members of one (week, dimension) add up exactly to week_change_cents, the
-- week's change in wasted_by_week.csv (waste_by_dimension_week rounds so). rank: 1 = the largest
-- change either way (ties by member). complete: both weeks are complete (the report compares
-- complete weeks only). people_with_waste, waste_detectors: of the member in the week, to say why.

WITH
member_weeks AS (SELECT * FROM waste_by_dimension_week),

calendar AS (
    SELECT CAST(unnest(generate_series(min(week_start), max(week_start), INTERVAL 7 DAY)) AS DATE) AS week_start
    FROM member_weeks
),

weeks AS (
    -- every calendar week's wasted cents (the members of one dimension sum to it) and completeness
    SELECT calendar.week_start,
           coalesce(max(member_weeks.week_wasted_cents), 0) AS week_wasted_cents,
           coalesce(bool_and(member_weeks.complete), false) AS complete
    FROM calendar
    LEFT JOIN member_weeks USING (week_start)
    GROUP BY calendar.week_start
),

week_changes AS (
    SELECT week_start,
           week_wasted_cents,
           week_wasted_cents - lag(week_wasted_cents) OVER (ORDER BY week_start) AS week_change_cents,
           complete AND lag(complete) OVER (ORDER BY week_start) AS complete
    FROM weeks
),

paired AS (
    SELECT
        coalesce(current.dimension, previous.dimension) AS dimension,
        coalesce(current.member, previous.member) AS member,
        coalesce(current.week_start, previous.week_start + 7) AS week_start,
        coalesce(current.wasted_cents, 0) AS wasted_cents,
        coalesce(previous.wasted_cents, 0) AS previous_wasted_cents,
        coalesce(current.flagged_user_weeks, 0) AS flagged_user_weeks,
        coalesce(previous.flagged_user_weeks, 0) AS previous_flagged_user_weeks,
        coalesce(current.people_with_waste, 0) AS people_with_waste,
        current.waste_detectors
    FROM member_weeks AS current
    FULL JOIN member_weeks AS previous
        ON previous.dimension = current.dimension AND previous.member = current.member
       AND previous.week_start + 7 = current.week_start
),

changes AS (
    SELECT paired.*, paired.wasted_cents - paired.previous_wasted_cents AS change_cents,
           week_changes.week_change_cents, week_changes.complete
    FROM paired
    JOIN week_changes USING (week_start)  -- drops the week after the last (no such week yet)
    WHERE week_changes.week_change_cents IS NOT NULL  -- the first week has none before it
      AND (paired.wasted_cents <> 0 OR paired.previous_wasted_cents <> 0)
)

SELECT
    week_start,
    strftime(week_start, '%G-W%V') AS iso_week,
    complete,
    dimension,
    member,
    row_number() OVER (PARTITION BY week_start, dimension ORDER BY abs(change_cents) DESC, member) AS rank,
    CAST(change_cents / 100 AS DECIMAL(18, 2)) AS change_usd,
    CAST(wasted_cents / 100 AS DECIMAL(18, 2)) AS wasted_cost_usd,
    CAST(previous_wasted_cents / 100 AS DECIMAL(18, 2)) AS previous_wasted_cost_usd,
    CAST(week_change_cents / 100 AS DECIMAL(18, 2)) AS week_change_usd,
    CAST(change_cents AS BIGINT) AS change_cents,
    CAST(week_change_cents AS BIGINT) AS week_change_cents,
    flagged_user_weeks,
    previous_flagged_user_weeks,
    people_with_waste,
    waste_detectors
FROM changes
