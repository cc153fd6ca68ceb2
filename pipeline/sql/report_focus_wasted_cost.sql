-- report_focus_wasted_cost: one row per (team, ISO week, model) with wasted cost, in FinOps FOCUS
-- 1.x column names (plus x_ columns of our own). Every cost column is the wasted cost in USD, in
-- cents by largest remainder (report_macros.sql) so the rows add up to the database total.
-- ChargePeriodStart is the week's Monday 00:00 UTC, ChargePeriodEnd the next Monday (exclusive).
-- ConsumedQuantity: the tokens behind the wasted cost (report_user_week_models.wasted_tokens).

WITH
user_week_models AS (SELECT * FROM report_user_week_models),
user_weeks AS (SELECT * FROM report_user_weeks),
totals AS (SELECT * FROM report_totals),

team_orgs AS (
    SELECT team, CASE WHEN count(DISTINCT org) = 1 THEN min(org) ELSE 'multiple' END AS org
    FROM user_weeks
    GROUP BY team
),

cells AS (
    SELECT
        team,
        week_start,
        model,
        min(run_id) AS run_id,
        sum(wasted_tokens) AS wasted_tokens,
        sum(wasted_cost_usd) AS wasted_cost_usd
    FROM user_week_models
    GROUP BY team, week_start, model
    HAVING sum(wasted_cost_usd) > 0
),

ranked AS (
    SELECT
        cells.*,
        report_floor_cents(wasted_cost_usd) AS wasted_floor,
        totals.wasted_cents - sum(report_floor_cents(wasted_cost_usd)) OVER () AS wasted_deficit,
        row_number() OVER (ORDER BY report_remainder(wasted_cost_usd) DESC, team, week_start, model) AS wasted_rank
    FROM cells
    CROSS JOIN totals
),

rounded AS (
    SELECT
        ranked.team,
        team_orgs.org,
        ranked.week_start,
        ranked.model,
        ranked.run_id,
        ranked.wasted_tokens,
        report_usd(ranked.wasted_floor, ranked.wasted_rank, ranked.wasted_deficit) AS wasted_cost_usd
    FROM ranked
    JOIN team_orgs USING (team)
)

SELECT
    wasted_cost_usd AS BilledCost,
    'USD' AS BillingCurrency,
    'Usage' AS ChargeCategory,
    'Wasted AI-assistant compute on ' || model || ' (spend the Goodhart detectors found produced nothing), team '
        || team || ', week of ' || strftime(week_start, '%Y-%m-%d') AS ChargeDescription,
    'Usage-Based' AS ChargeFrequency,
    report_utc(week_start + 7) AS ChargePeriodEnd,
    report_utc(week_start) AS ChargePeriodStart,
    CAST(round(wasted_tokens) AS BIGINT) AS ConsumedQuantity,
    'Tokens' AS ConsumedUnit,
    wasted_cost_usd AS ContractedCost,
    wasted_cost_usd AS EffectiveCost,
    wasted_cost_usd AS ListCost,
    report_provider(model) AS ProviderName,
    model AS ResourceName,
    'AI and Machine Learning' AS ServiceCategory,
    'AI coding assistant' AS ServiceName,
    model AS SkuId,
    team AS SubAccountId,
    team AS SubAccountName,
    CAST(json_object(
        'goodhart:kind', 'wasted_ai_compute',
        'goodhart:org', org,
        'goodhart:team', team,
        'goodhart:run_id', run_id
    ) AS VARCHAR) AS Tags,
    run_id AS x_GoodhartRunId
FROM rounded
ORDER BY week_start, team, model
