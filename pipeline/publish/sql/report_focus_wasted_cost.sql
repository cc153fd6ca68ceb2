-- kind: full
-- grain: SubAccountName, ChargePeriodStart, SkuId
-- temporary: true
-- tags: report
-- report_focus_wasted_cost: one row per (team, ISO week, model) with AI usage, in the columns of
-- the FinOps FOCUS Cost and Usage dataset: every column FOCUS 1.2 makes mandatory, the 1.3
-- additions (ServiceProviderName, HostProviderName), the conditional ones that apply (sub
-- account, usage quantity, SKU, tags), then x_ columns of our own. docs/finance.md says what
-- each holds. Every cost column is the cell's wasted cost in USD; ConsumedQuantity and
-- PricingQuantity its wasted tokens (whole, written as decimals: FOCUS types them Decimal). Rows with $0 of waste stay (unpriced usage among them), so
-- x_TotalCost / x_TotalTokens add up to the whole AI spend and x_UnpricedTokens to the unpriced.
-- Rounding: largest remainder within each model to that model's line of report_wasted_by_model,
-- so a model's rows add up to it exactly and all rows to the database totals.
-- Charge and billing period: the ISO week, Monday 00:00 UTC to the next Monday (exclusive).

WITH
user_week_models AS (SELECT * FROM report_user_week_models),
user_weeks AS (SELECT * FROM report_user_weeks),
models AS (SELECT * FROM report_wasted_by_model),

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
        sum(tokens) AS tokens,
        sum(wasted_tokens) AS wasted_tokens,
        sum(cost_usd) AS cost_usd,
        sum(wasted_cost_usd) AS wasted_cost_usd,
        sum(unpriced_tokens) AS unpriced_tokens
    FROM user_week_models
    GROUP BY team, week_start, model
),

ranked AS (
    SELECT
        cells.*,
        report_floor_cents(cells.cost_usd) AS cost_floor,
        CAST(models.cost_usd * 100 AS BIGINT) - sum(report_floor_cents(cells.cost_usd)) OVER model_cells AS cost_deficit,
        row_number() OVER (model_cells ORDER BY report_remainder(cells.cost_usd) DESC, team, week_start) AS cost_rank,
        report_floor_cents(cells.wasted_cost_usd) AS wasted_floor,
        CAST(models.wasted_cost_usd * 100 AS BIGINT) - sum(report_floor_cents(cells.wasted_cost_usd)) OVER model_cells AS wasted_deficit,
        row_number() OVER (model_cells ORDER BY report_remainder(cells.wasted_cost_usd) DESC, team, week_start) AS wasted_rank,
        report_floor_tokens(cells.tokens) AS tokens_floor,
        models.tokens - sum(report_floor_tokens(cells.tokens)) OVER model_cells AS tokens_deficit,
        row_number() OVER (model_cells ORDER BY report_token_remainder(cells.tokens) DESC, team, week_start) AS tokens_rank,
        report_floor_tokens(cells.wasted_tokens) AS wasted_tokens_floor,
        models.wasted_tokens - sum(report_floor_tokens(cells.wasted_tokens)) OVER model_cells AS wasted_tokens_deficit,
        row_number() OVER (model_cells ORDER BY report_token_remainder(cells.wasted_tokens) DESC, team, week_start) AS wasted_tokens_rank
    FROM cells
    JOIN models USING (model)
    WINDOW model_cells AS (PARTITION BY cells.model)
),

rounded AS (
    SELECT
        ranked.team,
        team_orgs.org,
        ranked.week_start,
        ranked.model,
        ranked.run_id,
        report_provider(ranked.model) AS provider,
        report_tokens(ranked.tokens_floor, ranked.tokens_rank, ranked.tokens_deficit) AS tokens,
        report_tokens(ranked.wasted_tokens_floor, ranked.wasted_tokens_rank, ranked.wasted_tokens_deficit) AS wasted_tokens,
        CAST(ranked.unpriced_tokens AS BIGINT) AS unpriced_tokens,
        report_usd(ranked.cost_floor, ranked.cost_rank, ranked.cost_deficit) AS cost_usd,
        report_usd(ranked.wasted_floor, ranked.wasted_rank, ranked.wasted_deficit) AS wasted_cost_usd
    FROM ranked
    JOIN team_orgs USING (team)
)

SELECT
    wasted_cost_usd AS BilledCost,
    'goodhart' AS BillingAccountId,
    getvariable('report_account_name') AS BillingAccountName,
    'USD' AS BillingCurrency,
    report_utc(week_start + 7) AS BillingPeriodEnd,
    report_utc(week_start) AS BillingPeriodStart,
    'Usage' AS ChargeCategory,
    CAST(NULL AS VARCHAR) AS ChargeClass,
    'Wasted AI-assistant compute on ' || model || ' (spend the Goodhart detectors found produced nothing), team '
        || team || ', week of ' || strftime(week_start, '%Y-%m-%d')
        || CASE WHEN unpriced_tokens > 0 THEN '; requests with no price counted at $0' ELSE '' END AS ChargeDescription,
    'Usage-Based' AS ChargeFrequency,
    report_utc(week_start + 7) AS ChargePeriodEnd,
    report_utc(week_start) AS ChargePeriodStart,
    CAST(wasted_tokens AS DECIMAL(38, 1)) AS ConsumedQuantity,
    'Tokens' AS ConsumedUnit,
    wasted_cost_usd AS ContractedCost,
    wasted_cost_usd AS EffectiveCost,
    provider AS HostProviderName,
    provider AS InvoiceIssuerName,
    wasted_cost_usd AS ListCost,
    CAST(wasted_tokens AS DECIMAL(38, 1)) AS PricingQuantity,
    'Tokens' AS PricingUnit,
    provider AS ProviderName,
    provider AS PublisherName,
    'AI and Machine Learning' AS ServiceCategory,
    'AI coding assistant' AS ServiceName,
    provider AS ServiceProviderName,
    'Generative AI' AS ServiceSubcategory,
    model AS SkuId,
    'Tokens' AS SkuMeter,
    model AS SkuPriceId,
    team AS SubAccountId,
    team AS SubAccountName,
    CAST(json_object(
        'goodhart:kind', 'wasted_ai_compute',
        'goodhart:org', org,
        'goodhart:team', team,
        'goodhart:run_id', run_id
    ) AS VARCHAR) AS Tags,
    run_id AS x_GoodhartRunId,
    cost_usd AS x_TotalCost,
    tokens AS x_TotalTokens,
    unpriced_tokens AS x_UnpricedTokens
FROM rounded
ORDER BY week_start, team, model
