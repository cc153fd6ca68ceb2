-- kind: full
-- grain: team
-- temporary: true
-- tags: report
-- report_wasted_by_team: one row per reported team (teams under `min_team_size` people merged into
-- 'other'), over the whole period. org: the team's org, or 'multiple' when its people span more
-- than one. Money in cents and tokens in whole tokens by largest remainder (report_macros.sql).
-- flagged_user_weeks_without_waste: flagged user-weeks that carry no wasted cost, and
-- detectors_without_waste the detectors that raised them (e.g. a rule for splitting work into
-- tiny deployments, which wastes no compute): why a team can be flagged and show $0.00.

{% import 'report.jinja' as report %}
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
        count(*) FILTER (WHERE flagged AND wasted_cost_usd = 0) AS flagged_user_weeks_without_waste,
        sum(tokens) AS tokens,
        sum(wasted_tokens) AS wasted_tokens,
        sum(cost_usd) AS cost_usd,
        sum(wasted_cost_usd) AS wasted_cost_usd
    FROM user_weeks
    GROUP BY team
),

zero_waste_detectors AS (
    SELECT team, string_agg(DISTINCT detector, ', ' ORDER BY detector) AS detectors_without_waste
    FROM (
        SELECT team, unnest(detectors) AS detector
        FROM user_weeks
        WHERE flagged AND wasted_cost_usd = 0
    )
    GROUP BY team
),

ranked AS (
    SELECT
        teams.*,
        {{ report.largest_remainder_columns('team') }},
        wasted_cost_usd / nullif(sum(wasted_cost_usd) OVER (), 0) AS exact_share_of_all_wasted
    FROM teams
    CROSS JOIN totals
),

rounded AS (
    SELECT
        ranked.team,
        ranked.org,
        ranked.people,
        ranked.user_weeks,
        ranked.flagged_user_weeks,
        ranked.flagged_user_weeks_without_waste,
        coalesce(zero_waste_detectors.detectors_without_waste, '') AS detectors_without_waste,
        CAST(ranked.tokens AS BIGINT) AS tokens,
        report_tokens(ranked.wasted_tokens_floor, ranked.wasted_tokens_rank, ranked.wasted_tokens_deficit) AS wasted_tokens,
        report_usd(ranked.cost_floor, ranked.cost_rank, ranked.cost_deficit) AS cost_usd,
        report_usd(ranked.wasted_floor, ranked.wasted_rank, ranked.wasted_deficit) AS wasted_cost_usd,
        round(ranked.exact_wasted_share, 6) AS wasted_share,
        round(ranked.exact_share_of_all_wasted, 6) AS share_of_all_wasted
    FROM ranked
    LEFT JOIN zero_waste_detectors USING (team)
)

SELECT *
FROM rounded
ORDER BY wasted_cost_usd DESC, team
