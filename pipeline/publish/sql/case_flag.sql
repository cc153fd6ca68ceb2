-- kind: full
-- grain: flag_id
-- temporary: true
-- case_flag: the flag a case file tells (getvariable('case_flag_id')), with its person's org and
-- the hours its timeline covers: the ISO week of the flag.
SELECT
    flags.*,
    people.org,
    CAST(flags.week_start AS TIMESTAMP) AS window_start,
    CAST(flags.week_start AS TIMESTAMP) + INTERVAL 7 DAY AS window_end
FROM flags
LEFT JOIN (SELECT DISTINCT user_id, week_start, org FROM user_week_scores) AS people USING (user_id, week_start)
WHERE flags.flag_id = getvariable('case_flag_id')
