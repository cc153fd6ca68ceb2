-- kind: incremental_by_week
-- grain: user_id, week_start, hour_of_day
-- user_hour_prompts: one row per (user_id, week_start, hour_of_day) with prompts: how many
-- prompts the person sent in that hour of the day (UTC) that week. user_week_features reads the
-- trailing `usual_hours_weeks` weeks of it to tell the person's usual hours; kept as a table so an
-- incremental run can read the weeks it does not rebuild.

WITH
prompts AS (SELECT user_id, ts FROM invocations)

SELECT user_id, iso_week(ts) AS week_start, hour(ts) AS hour_of_day, count(*) AS prompts
FROM prompts
GROUP BY ALL
