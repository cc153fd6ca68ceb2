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
-- Each group-week's values are gathered once into a list and the trailing weeks' lists joined by a
-- window, instead of joining every value to every week whose window holds it: at 100M token rows
-- the join fed median() and mad() 112M rows that spilled over 40 GB to disk (and failed); this
-- takes 29-39 s there. Every (scope, group, week, feature) is one row of `windows`, so each
-- median and MAD is computed once (1.5-1.7 s at 10M).

WITH
user_weeks AS (
    SELECT * FROM user_week_features
    WHERE read_by_rebuilt_weeks(week_start, 7 * greatest(getvariable('own_weeks'), getvariable('peer_weeks') - 1))
),

feature_values AS (
    -- one row per user-week and feature, NULL values included: a group-week-feature whose values
    -- are all NULL still gets its window (it may hold values of other weeks)
    SELECT user_id, team, org, week_start, feature, value
    FROM (
        SELECT
            user_id, team, org, week_start,
            {%- for feature in peer_features %}
            CAST({{ feature }} AS DOUBLE) AS {{ feature }}{{ "," if not loop.last }}
            {%- endfor %}
        FROM user_weeks
    ) UNPIVOT INCLUDE NULLS (value FOR feature IN ({{ peer_features | join(", ") }}))
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

week_values AS (
    -- team, org, company: each group-week-feature's values and people as lists (empty when every
    -- value is NULL)
    SELECT
        scope, group_name, week_start, feature,
        coalesce(list(value) FILTER (WHERE value IS NOT NULL), []) AS week_values,
        coalesce(list(user_id) FILTER (WHERE value IS NOT NULL), []) AS week_people
    FROM scoped_values
    WHERE scope <> 'own'
    GROUP BY scope, group_name, week_start, feature
),

windows AS (
    -- team, org, company: the trailing peer_weeks weeks, this one included
    SELECT
        scope, group_name, week_start, feature,
        flatten(list(week_values) OVER peers_window) AS window_values,
        len(list_distinct(flatten(list(week_people) OVER peers_window))) AS peers
    FROM week_values
    WINDOW peers_window AS (
        PARTITION BY scope, group_name, feature ORDER BY week_start
        RANGE BETWEEN to_days(CAST(7 * (getvariable('peer_weeks') - 1) AS INTEGER)) PRECEDING AND CURRENT ROW)
    UNION ALL
    -- own: the own_weeks before it (one value a week)
    SELECT scope, group_name, week_start, feature, window_values, len(window_values)
    FROM (
        SELECT
            scope, group_name, week_start, feature,
            coalesce(list(value) FILTER (WHERE value IS NOT NULL) OVER own_window, []) AS window_values
        FROM scoped_values  -- one row per person-week-feature (NULL for a feature the week lacks)
        WHERE scope = 'own'
        WINDOW own_window AS (
            PARTITION BY scope, group_name, feature ORDER BY week_start
            RANGE BETWEEN to_days(CAST(7 * getvariable('own_weeks') AS INTEGER)) PRECEDING AND to_days(7) PRECEDING)
    )
)

SELECT
    scope,
    group_name,
    week_start,
    feature,
    list_aggregate(window_values, 'median') AS median,
    list_aggregate(window_values, 'mad') AS mad,
    peers
FROM windows
WHERE rebuilt_week(week_start) AND len(window_values) > 0
