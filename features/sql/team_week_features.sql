-- kind: incremental_by_week
-- grain: team, week_start
-- team_week_features: one row per (team, week_start) with AI usage, for teams named in `people`
-- (not `unassigned`): what the team did together that week. A team that burns tokens together
-- raises its own team baseline with it, so each member looks team-typical; seen whole, the team
-- stands out against the company and against its own previous weeks.
--   team_people: people of the team with AI use that week;
--   team_tokens_company_z: the team's median tokens per person, as a robust z against the company
--     baseline of tokens (peer_baselines; NULL when the company is too small for one), which is the
--     median of the members' tokens_company_z;
--   team_codeless_repo_sessions_median: the median person's sessions in repositories that kept no
--     code and fed no merged change;
--   team_codeless_repo_token_share_median: the median person's share of tokens in such sessions
--     (a median: one heavy burner in a team does not make the team look like it burns);
--   team_codeless_repo_token_share_own_median: that median's median over the team's own previous
--     `own_weeks` weeks (NULL under `min_own_weeks` such weeks), and _own_rise: this week's
--     minus it.
-- Rendered with Jinja. An incremental build computes the rebuilt weeks only.

WITH
user_weeks AS (
    SELECT * FROM user_week_features
    WHERE team <> 'unassigned' AND read_by_rebuilt_weeks(week_start, 7 * getvariable('own_weeks'))
),
company_tokens AS (
    SELECT week_start, median, mad
    FROM peer_baselines
    WHERE scope = 'company' AND feature = 'tokens' AND peers >= getvariable('min_company_people')
      AND rebuilt_week(week_start)
),

team_weeks AS (
    SELECT
        team,
        week_start,
        count(DISTINCT user_id) AS team_people,
        median(tokens) AS team_tokens_median,
        median(codeless_repo_sessions) AS team_codeless_repo_sessions_median,
        median(codeless_repo_token_share) AS team_codeless_repo_token_share_median
    FROM user_weeks
    GROUP BY team, week_start
),

with_own_history AS (
    SELECT
        *,
        median(team_codeless_repo_token_share_median) OVER own_window AS own_median,
        count(*) OVER own_window AS previous_weeks
    FROM team_weeks
    WINDOW own_window AS (
        PARTITION BY team ORDER BY week_start
        RANGE BETWEEN to_days(CAST(7 * getvariable('own_weeks') AS INTEGER)) PRECEDING AND to_days(7) PRECEDING)
)

SELECT
    team,
    week_start,
    team_people,
    team_tokens_median,
    robust_z(team_tokens_median, company_tokens.median, company_tokens.mad, {{ peer_features["tokens"] }})
        AS team_tokens_company_z,
    team_codeless_repo_sessions_median,
    team_codeless_repo_token_share_median,
    CASE WHEN previous_weeks >= getvariable('min_own_weeks') THEN own_median END
        AS team_codeless_repo_token_share_own_median,
    team_codeless_repo_token_share_median - team_codeless_repo_token_share_own_median
        AS team_codeless_repo_token_share_own_rise
FROM with_own_history
LEFT JOIN company_tokens USING (week_start)
WHERE rebuilt_week(week_start)
