-- kind: incremental_by_week
-- grain: user_id, week_start
-- user_week_peer_features: one row per (user_id, week_start): user_week_features plus, for each
-- peer feature f (`features.build.PEER_FEATURES`) and each level of peer_baselines (team, org,
-- company, own history), its baseline f_<level>_median and robust z-score f_<level>_z against it.
-- A baseline of fewer than `min_peer_people` people (`min_company_people` for the company; for
-- one's own history, fewer than `min_own_weeks` weeks) is too small to say what is usual: NULL.
-- Unmerged work is also read against the company's usual share (unmerged_excess_share).
-- Then the person's last three calendar weeks together (the current one and the two before; weeks
-- without usage have no row): a slow ramp hides week by week, not over weeks. Then their team's
-- week (team_week_features, every team_ column; NULL for people in no team): a team that burns
-- together sets its own team baseline.
-- Rendered with Jinja. An incremental build computes the rebuilt weeks only.

WITH
user_weeks AS (SELECT * FROM user_week_features WHERE read_by_rebuilt_weeks(week_start, 14)),
baselines AS (SELECT * FROM peer_baselines WHERE rebuilt_week(week_start)),
team_weeks AS (SELECT * FROM team_week_features WHERE rebuilt_week(week_start)),

three_weeks AS (
    SELECT
        user_id,
        week_start,
        count(*) OVER last_3_weeks AS active_weeks_3w,
        safe_div(sum(tokens * unmerged_token_share) OVER last_3_weeks, sum(tokens) OVER last_3_weeks)
            AS unmerged_token_share_3w,
        sum(merged_changes) OVER last_3_weeks AS merged_changes_3w,
        sum(deploying_repo_merged_changes) OVER last_3_weeks AS deploying_repo_merged_changes_3w
    FROM user_weeks
    WINDOW last_3_weeks AS (PARTITION BY user_id ORDER BY week_start
                            RANGE BETWEEN INTERVAL 14 DAYS PRECEDING AND CURRENT ROW)
),

wide AS (
    SELECT
        scope,
        group_name,
        week_start,
        {%- for feature in peer_features %}
        max(median) FILTER (WHERE feature = '{{ feature }}') AS {{ feature }}_median,
        max(mad) FILTER (WHERE feature = '{{ feature }}') AS {{ feature }}_mad{{ "," if not loop.last }}
        {%- endfor %}
    FROM baselines
    WHERE peers >= CASE scope WHEN 'own' THEN getvariable('min_own_weeks')
                              WHEN 'company' THEN getvariable('min_company_people')
                              ELSE getvariable('min_peer_people') END
    GROUP BY ALL
)

SELECT
    user_weeks.*,
    {%- for feature in peer_features %}
    {%- set outer = loop %}
    {%- for scope in peer_scopes %}
    {{ scope }}.{{ feature }}_median AS {{ feature }}_{{ scope }}_median,
    robust_z(user_weeks.{{ feature }}, {{ scope }}.{{ feature }}_median, {{ scope }}.{{ feature }}_mad, {{ peer_features[feature] }}) AS {{ feature }}_{{ scope }}_z,
    {%- endfor %}
    {%- endfor %}
    -- value per token as a multiple of the company's usual (a heavy-tailed ratio: a multiple reads
    -- plainly where a robust z of thousands does not)
    safe_div(user_weeks.tokens_per_merged_line, company.tokens_per_merged_line_median) AS tokens_per_merged_line_company_ratio,
    -- unmerged work beyond the company's usual: of the tokens the company's median person would have
    -- merged, the share that fed no merged change, (share - median) / (1 - median). Where honest work
    -- keeps code less often the median is higher, and so is the share it takes to stand out.
    excess_share(user_weeks.unmerged_token_share, company.unmerged_token_share_median) AS unmerged_excess_share,
    excess_share(three_weeks.unmerged_token_share_3w, company.unmerged_token_share_median) AS unmerged_excess_share_3w,
    three_weeks.active_weeks_3w,
    three_weeks.unmerged_token_share_3w,
    three_weeks.merged_changes_3w,
    three_weeks.deploying_repo_merged_changes_3w,
    team_weeks.* EXCLUDE (team, week_start)
FROM user_weeks
JOIN three_weeks USING (user_id, week_start)
LEFT JOIN team_weeks
    ON team_weeks.team = user_weeks.team AND team_weeks.week_start = user_weeks.week_start
LEFT JOIN wide AS team
    ON team.scope = 'team' AND team.group_name = user_weeks.team AND team.week_start = user_weeks.week_start
LEFT JOIN wide AS org
    ON org.scope = 'org' AND org.group_name = user_weeks.org AND org.week_start = user_weeks.week_start
LEFT JOIN wide AS company
    ON company.scope = 'company' AND company.week_start = user_weeks.week_start
LEFT JOIN wide AS own
    ON own.scope = 'own' AND own.group_name = user_weeks.user_id AND own.week_start = user_weeks.week_start
WHERE rebuilt_week(user_weeks.week_start)
