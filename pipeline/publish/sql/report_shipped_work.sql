-- report_shipped_work: shipped_work as the finance report shows it; grain (user_id, week_start),
-- a temp view. Teams under `min_team_size` people are merged into 'other', as everywhere in the
-- report; pipeline/publish/leaderboard.py ranks the teams from it (report_honest_leaderboard).

WITH
shipped AS (SELECT * FROM shipped_work),

team_sizes AS (
    SELECT team, count(DISTINCT user_id) AS people
    FROM shipped
    GROUP BY team
)

SELECT
    CASE WHEN team_sizes.people >= getvariable('min_team_size') THEN shipped.team ELSE 'other' END AS team,
    shipped.* EXCLUDE (team)
FROM shipped
JOIN team_sizes USING (team)
