-- report_wasted_by_team: one row per reported team (teams under `min_team_size` people merged into
-- 'other'), over the whole period. org: the team's org, or 'multiple' when its people span more
-- than one. Money in cents by largest remainder (report_macros.sql).

WITH
user_weeks AS (SELECT * FROM report_user_weeks),
totals AS (SELECT * FROM report_totals),

teams AS (
    SELECT
        team,
        CASE WHEN count(DISTINCT org) = 1 THEN min(org) ELSE 'multiple' END AS org,
        count(DISTINCT user_id) AS people,
        count(*) AS user_weeks,
        count(*) FILTER (WHERE flagged) AS flagged_user_weeks,
        sum(tokens) AS tokens,
        sum(cost_usd) AS cost_usd,
        sum(wasted_cost_usd) AS wasted_cost_usd
    FROM user_weeks
    GROUP BY team
),

ranked AS (
    SELECT
        teams.*,
        report_floor_cents(cost_usd) AS cost_floor,
        totals.cost_cents - sum(report_floor_cents(cost_usd)) OVER () AS cost_deficit,
        row_number() OVER (ORDER BY report_remainder(cost_usd) DESC, team) AS cost_rank,
        report_floor_cents(wasted_cost_usd) AS wasted_floor,
        totals.wasted_cents - sum(report_floor_cents(wasted_cost_usd)) OVER () AS wasted_deficit,
        row_number() OVER (ORDER BY report_remainder(wasted_cost_usd) DESC, team) AS wasted_rank,
        wasted_cost_usd / nullif(cost_usd, 0) AS exact_wasted_share,
        wasted_cost_usd / nullif(sum(wasted_cost_usd) OVER (), 0) AS exact_share_of_all_wasted
    FROM teams
    CROSS JOIN totals
),

rounded AS (
    SELECT
        team,
        org,
        people,
        user_weeks,
        flagged_user_weeks,
        CAST(tokens AS BIGINT) AS tokens,
        report_usd(cost_floor, cost_rank, cost_deficit) AS cost_usd,
        report_usd(wasted_floor, wasted_rank, wasted_deficit) AS wasted_cost_usd,
        round(exact_wasted_share, 6) AS wasted_share,
        round(exact_share_of_all_wasted, 6) AS share_of_all_wasted
    FROM ranked
)

SELECT *
FROM rounded
ORDER BY wasted_cost_usd DESC, team
