-- report_totals: one row: the database totals every report file adds up to, in whole cents
-- (sum over user_week_scores, rounded to the cent once, here).

WITH
user_weeks AS (SELECT * FROM report_user_weeks)

SELECT
    CAST(round(coalesce(sum(cost_usd), 0) * 100) AS BIGINT) AS cost_cents,
    CAST(round(coalesce(sum(wasted_cost_usd), 0) * 100) AS BIGINT) AS wasted_cents
FROM user_weeks
