-- kind: incremental_by_week
-- grain: scope, group_name, week_start, feature
-- peer_baselines: one row per (scope, group_name, week_start, feature): the median and median
-- absolute deviation of a peer feature (`features.build.PEER_FEATURES`) at four levels, so that
-- neither a team that games together nor a person who ramps slowly sets their own yardstick:
--   team, org, company: the user-weeks of the group in the trailing `peer_weeks` weeks, the
--     current week included; `peers` counts the distinct people;
--   own: the person's own previous `own_weeks` weeks, the current week left out; `peers` counts
--     those weeks.
-- NULL values (for example tokens per deployed change in a week with no deployed change) are left
-- out. Rendered with Jinja (the feature list is declared once, in features/build.py).
-- An incremental build computes the rebuilt weeks only, from the user-weeks their windows read.

WITH
user_weeks AS (
    SELECT * FROM user_week_features
    WHERE read_by_rebuilt_weeks(week_start, 7 * greatest(getvariable('own_weeks'), getvariable('peer_weeks') - 1))
),

feature_values AS (
    UNPIVOT (
        SELECT
            user_id, team, org, week_start,
            {%- for feature in peer_features %}
            CAST({{ feature }} AS DOUBLE) AS {{ feature }}{{ "," if not loop.last }}
            {%- endfor %}
        FROM user_weeks
    )
    ON {{ peer_features | join(", ") }}
    INTO NAME feature VALUE value
),

scoped_values AS (
    SELECT 'team' AS scope, team AS group_name, user_id, week_start, feature, value FROM feature_values
    UNION ALL
    SELECT 'org', org, user_id, week_start, feature, value FROM feature_values
    UNION ALL
    SELECT 'company', 'company', user_id, week_start, feature, value FROM feature_values
    UNION ALL
    SELECT 'own', user_id, user_id, week_start, feature, value FROM feature_values
),

group_weeks AS (
    SELECT DISTINCT scope, group_name, week_start FROM scoped_values WHERE rebuilt_week(week_start)
),

windows AS (
    -- team, org, company: the trailing peer_weeks weeks, this one included; own: the own_weeks before it
    SELECT g.scope, g.group_name, g.week_start, v.user_id, v.feature, v.value
    FROM group_weeks AS g
    JOIN scoped_values AS v
        ON v.scope = g.scope
        AND v.group_name = g.group_name
        AND v.week_start >= g.week_start - to_days(7 * CAST(
            CASE WHEN g.scope = 'own' THEN getvariable('own_weeks') ELSE getvariable('peer_weeks') - 1 END AS INTEGER))
        AND v.week_start <= g.week_start - to_days(CASE WHEN g.scope = 'own' THEN 7 ELSE 0 END)
)

SELECT
    scope,
    group_name,
    week_start,
    feature,
    median(value) AS median,
    mad(value) AS mad,
    CASE WHEN scope = 'own' THEN count(*) ELSE count(DISTINCT user_id) END AS peers
FROM windows
GROUP BY scope, group_name, week_start, feature
