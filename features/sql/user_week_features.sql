-- kind: incremental_by_week
-- grain: user_id, week_start
-- user_week_features: one row per (user_id, week_start) with any AI usage (a request or a prompt).
-- Volume counts each request and prompt in the ISO week of its own timestamp, so a session that
-- spans a week boundary adds to both weeks; outcome joins the person's changes merged that week.
-- Import CTEs NOT MATERIALIZED (docs/features.md): 100M token rows 92 -> 65 s, 10M about 0.3 s less.

WITH
requests AS NOT MATERIALIZED (SELECT * FROM token_usage),
prompts AS NOT MATERIALIZED (SELECT * FROM invocations),
sessions AS NOT MATERIALIZED (SELECT * FROM session_features),
repeats AS NOT MATERIALIZED (SELECT * FROM prompt_repeats),
changes AS NOT MATERIALIZED (SELECT * FROM change_deployments),
-- repositories with a deployed change (research and prototype repositories never have one)
deploying_repos AS (SELECT DISTINCT repo FROM changes WHERE deployed AND repo IS NOT NULL),
links AS NOT MATERIALIZED (SELECT * FROM session_links),
directory AS NOT MATERIALIZED (SELECT user_id, team, org FROM people),
session_activity_weeks AS NOT MATERIALIZED (SELECT * FROM session_weeks),
hour_counts AS (SELECT * FROM user_hour_prompts),

request_hours AS (
    -- the requests summed per session and hour (and side of the snapshot-window start, which need
    -- not fall on the hour): every per-request condition below is one on the hour, so the session
    -- kinds and usual hours join these rows, not every request (536k instead of 10.8M at 10M
    -- token rows: the model took 7.0-7.5 s there, now 5.6-5.9 s, the same values)
    SELECT
        user_id,
        week_start,
        session_id,
        date_trunc('hour', ts) AS hour_start,
        ts >= snapshot_at - to_microseconds(CAST(getvariable('snapshot_window_hours') * 3600e6 AS BIGINT))
            AND ts < snapshot_at AS before_snapshot,
        sum(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens) AS tokens,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        sum(cache_read_tokens) AS cache_read_tokens,
        sum(cache_write_tokens) AS cache_write_tokens,
        sum(coalesce(cost_usd, 0)) AS cost_usd,
        count(*) AS requests
    FROM (
        SELECT
            *,
            week_start + to_days(CAST(getvariable('snapshot_weekday') AS INTEGER) - 1)
                + to_hours(CAST(getvariable('snapshot_hour') AS INTEGER)) AS snapshot_at
        FROM (SELECT *, iso_week(ts) AS week_start FROM requests)
    )
    GROUP BY ALL
),

request_weeks AS (SELECT DISTINCT user_id, week_start FROM request_hours),

usual_hours AS (
    -- hours of the day in which the person sent at least `usual_hour_min_share` of their prompts
    -- over the trailing `usual_hours_weeks` weeks, this one included
    SELECT user_id, week_start, hour_of_day
    FROM (
        SELECT
            w.user_id,
            w.week_start,
            h.hour_of_day,
            sum(h.prompts) / sum(sum(h.prompts)) OVER (PARTITION BY w.user_id, w.week_start) AS share
        FROM request_weeks AS w
        JOIN hour_counts AS h
            ON h.user_id = w.user_id
            AND h.week_start > w.week_start - to_days(7 * CAST(getvariable('usual_hours_weeks') AS INTEGER))
            AND h.week_start <= w.week_start
        GROUP BY w.user_id, w.week_start, h.hour_of_day
    )
    WHERE share >= getvariable('usual_hour_min_share')
),

has_usual_hours AS (SELECT DISTINCT user_id, week_start FROM usual_hours),

request_context AS (
    SELECT
        t.*,
        coalesce(NOT sessions.deployed, false) AS unshipped,  -- unknown (NULL: no lines reported) is not unshipped
        coalesce(sessions.unmerged, false) AS unmerged,  -- the session kinds: see session_features
        coalesce(sessions.idle, false) AS idle,
        coalesce(sessions.codeless, false) AS codeless,
        coalesce(sessions.unknown_outcome, false) AS unknown_outcome,
        hour(t.hour_start) < 6 AS at_night,
        isodow(t.hour_start) >= 6 AS at_weekend,
        h.user_id IS NOT NULL AND u.hour_of_day IS NULL AS off_hours
    FROM request_hours AS t
    LEFT JOIN sessions USING (session_id)
    LEFT JOIN has_usual_hours AS h ON h.user_id = t.user_id AND h.week_start = t.week_start
    LEFT JOIN usual_hours AS u
        ON u.user_id = t.user_id AND u.week_start = t.week_start AND u.hour_of_day = hour(t.hour_start)
),

volume AS (
    SELECT
        user_id,
        week_start,
        sum(tokens) AS tokens,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        sum(cache_read_tokens) AS cache_read_tokens,
        sum(cache_write_tokens) AS cache_write_tokens,
        sum(cost_usd) AS cost_usd,
        CAST(sum(requests) AS BIGINT) AS requests,
        sum(tokens) FILTER (WHERE unshipped) AS unshipped_tokens,
        sum(tokens) FILTER (WHERE unmerged) AS unmerged_tokens,
        sum(tokens) FILTER (WHERE idle) AS idle_tokens,
        sum(tokens) FILTER (WHERE codeless) AS codeless_tokens,
        sum(tokens) FILTER (WHERE unknown_outcome) AS unknown_outcome_tokens,
        coalesce(sum(cost_usd) FILTER (WHERE unshipped), 0) AS unshipped_cost_usd,
        sum(tokens) FILTER (WHERE at_night) AS night_tokens,
        sum(tokens) FILTER (WHERE at_weekend) AS weekend_tokens,
        sum(tokens) FILTER (WHERE off_hours) AS off_hours_tokens,
        sum(tokens) FILTER (WHERE before_snapshot) AS snapshot_tokens
    FROM request_context
    GROUP BY ALL
),

peaks AS (
    -- the most tokens sent in any 3 hours starting at a request: max(sum(tokens) OVER (ORDER BY ts
    -- RANGE BETWEEN CURRENT ROW AND INTERVAL 3 HOURS FOLLOWING)) per user-week, in one pass over each
    -- user-week's sorted requests (peak_window_sum: features/sql_functions.py; the window operator
    -- took 2.5x as long at 10M token rows)
    SELECT
        user_id,
        week_start,
        peak_window_sum(list(epoch_us(ts)), list(tokens), CAST(3 AS BIGINT) * 3600 * 1000000) AS peak_3h_tokens
    FROM (
        SELECT user_id, iso_week(ts) AS week_start, ts,
               input_tokens + output_tokens + cache_read_tokens + cache_write_tokens AS tokens
        FROM requests
    )
    GROUP BY ALL
),

prompt_week AS (
    SELECT
        prompts.user_id,
        iso_week(prompts.ts) AS week_start,
        prompts.session_id,
        prompts.ts,
        prompts.invocation_id,
        prompts.repo,
        prompts.repo_unreported,
        prompts.prompt_length,
        prompts.lines_accepted,
        prompts.commit_sha,
        repeats.exact_repeat_in_session,
        repeats.near_repeat_in_session,
        repeats.exact_repeat_in_week,
        repeats.near_repeat_in_week,
        repeats.gap_seconds,
        -- a repeat that moved nothing: the turn kept no code (reported 0 lines) and made no commit.
        -- People type "yes" and "continue" between an agent's steps, and the agent then works;
        -- a regenerated answer keeps nothing. NULL when the prompt reports no lines. An idle
        -- agent's "continue" keeps nothing too: idle sessions count in idle_session_token_share.
        CASE WHEN prompts.lines_accepted IS NOT NULL THEN coalesce(
            repeats.exact_repeat_in_week AND prompts.lines_accepted = 0 AND prompts.commit_sha IS NULL
            AND NOT coalesce(kinds.idle, false), false) END AS unkept_repeat
    FROM prompts
    JOIN repeats USING (invocation_id)
    LEFT JOIN sessions AS kinds ON kinds.session_id = prompts.session_id
),

padded_sessions AS (
    -- each session's prompts of the week, and whether at least half of them (of 4 or more) are
    -- repeats that moved nothing: padding fills the sessions it pads, while approvals spread
    -- thinly over a person's agent work (at a quarter of all prompts, the 99th percentile of
    -- legitimate user-weeks of the tuning worlds holds 5-9% of its prompts in such sessions)
    SELECT
        user_id,
        week_start,
        count(*) AS session_prompts,
        count(*) >= 4 AND avg(CAST(coalesce(unkept_repeat, false) AS DOUBLE)) >= 0.5 AS padded
    FROM prompt_week
    GROUP BY user_id, week_start, session_id
),

padding AS (
    SELECT
        user_id,
        week_start,
        coalesce(sum(session_prompts) FILTER (WHERE padded), 0) AS padded_session_prompts
    FROM padded_sessions
    GROUP BY ALL
),

prompting AS (
    SELECT
        user_id,
        week_start,
        count(*) AS prompts,
        sum(lines_accepted) AS lines_accepted,  -- NULL when no prompt of the week reports lines
        count(commit_sha) AS commits_made,
        avg(CAST(exact_repeat_in_session AS DOUBLE)) AS exact_repeat_share,
        avg(CAST(near_repeat_in_session AS DOUBLE)) AS near_repeat_share,
        avg(CAST(exact_repeat_in_week AS DOUBLE)) AS exact_repeat_share_week,
        -- NULL when no prompt of the week reports lines
        CASE WHEN count(lines_accepted) > 0 THEN avg(CAST(coalesce(unkept_repeat, false) AS DOUBLE))
            END AS exact_repeat_unkept_share_week,
        avg(CAST(near_repeat_in_week AS DOUBLE)) AS near_repeat_share_week,
        CASE WHEN count(gap_seconds) >= 2 THEN safe_div(stddev_samp(gap_seconds), avg(gap_seconds)) END AS gap_cv,
        -- of the prompts whose repository context is known: NULL when the source reports none
        avg(CAST(repo IS NULL AS DOUBLE)) FILTER (WHERE repo IS NOT NULL OR NOT repo_unreported) AS no_repo_prompt_share,
        avg(prompt_length) AS mean_prompt_length
    FROM prompt_week
    GROUP BY ALL
),

session_activity AS (
    SELECT
        session_activity_weeks.user_id,
        session_activity_weeks.week_start,
        count(*) AS sessions,
        count(*) FILTER (WHERE sessions.codeless) AS codeless_repo_sessions,
        bool_and(sessions.repo_unreported) AS repos_unreported,
        max(sessions.longest_near_run) AS longest_near_run
    FROM session_activity_weeks
    JOIN sessions USING (session_id)
    GROUP BY ALL
),

active_time AS (
    SELECT user_id, week_start, sum(active_minutes) AS active_minutes
    FROM session_activity_weeks
    GROUP BY ALL
),

ai_outcome AS (
    SELECT
        session_activity_weeks.user_id,
        session_activity_weeks.week_start,
        count(DISTINCT links.change_id) FILTER (WHERE changes.merged_at IS NOT NULL) AS ai_merged_changes,
        count(DISTINCT links.change_id) FILTER (WHERE changes.deployed) AS ai_deployed_changes,
        -- tiny merged changes the week's sessions fed on evidence (credit > 0: a window alone would
        -- tie one session to every tiny change its author merged nearby), and how many sessions fed them
        count(DISTINCT links.change_id) FILTER (WHERE changes.merged_at IS NOT NULL AND changes.is_tiny AND links.credit > 0)
            AS ai_tiny_changes,
        count(DISTINCT links.session_id) FILTER (WHERE changes.merged_at IS NOT NULL AND changes.is_tiny AND links.credit > 0)
            AS tiny_change_sessions
    FROM session_activity_weeks
    JOIN links USING (session_id)
    JOIN changes USING (change_id)
    WHERE links.credit IS DISTINCT FROM 0  -- a window link without code kept is no link
    GROUP BY ALL
),

ai_shipped_lines AS (
    -- lines of the deployed changes the week's sessions fed on evidence (credit > 0), each once
    SELECT user_id, week_start, sum(lines_changed) AS ai_shipped_lines
    FROM (
        SELECT DISTINCT session_activity_weeks.user_id, session_activity_weeks.week_start, links.change_id, changes.lines_changed
        FROM session_activity_weeks
        JOIN links USING (session_id)
        JOIN changes USING (change_id)
        WHERE links.credit > 0 AND changes.deployed
    )
    GROUP BY ALL
),

shipping AS (
    SELECT
        author_id AS user_id,
        iso_week(merged_at) AS week_start,
        count(*) AS merged_changes,
        count(*) FILTER (WHERE deployed) AS deployed_changes,
        -- into a repository that deploys: in one that never does, exploration that does not merge
        -- is the work itself
        count(*) FILTER (WHERE repo IN (SELECT repo FROM deploying_repos)) AS deploying_repo_merged_changes,
        avg(CAST(is_tiny AS DOUBLE)) AS tiny_change_share,
        count(*) FILTER (WHERE is_tiny) AS tiny_merged_changes,
        safe_div(count(DISTINCT first_deployment_id), count(*) FILTER (WHERE deployed)) AS deployments_per_change,
        avg(lines_changed) AS mean_change_lines,
        -- NULL when any merged change's size is unknown: a sum over the known ones would understate it
        CASE WHEN count(lines_changed) = count(*) THEN sum(lines_changed) END AS merged_lines
    FROM changes
    WHERE merged_at IS NOT NULL AND author_id IS NOT NULL
    GROUP BY ALL
),

user_weeks AS (
    SELECT user_id, week_start FROM volume
    UNION
    SELECT user_id, week_start FROM prompting
)

SELECT
    user_weeks.user_id,
    coalesce(directory.team, 'unassigned') AS team,
    coalesce(directory.org, 'unassigned') AS org,
    user_weeks.week_start,
    coalesce(volume.tokens, 0) AS tokens,
    coalesce(volume.input_tokens, 0) AS input_tokens,
    coalesce(volume.output_tokens, 0) AS output_tokens,
    coalesce(volume.cache_read_tokens, 0) AS cache_read_tokens,
    coalesce(volume.cache_write_tokens, 0) AS cache_write_tokens,
    coalesce(volume.cost_usd, 0) AS cost_usd,
    coalesce(session_activity.sessions, 0) AS sessions,
    -- unknown (NULL), not 0, when the sources name no repository of any of the week's sessions
    CASE WHEN NOT coalesce(session_activity.repos_unreported, false)
         THEN coalesce(session_activity.codeless_repo_sessions, 0) END AS codeless_repo_sessions,
    coalesce(volume.requests, 0) AS requests,
    coalesce(prompting.prompts, 0) AS prompts,
    coalesce(active_time.active_minutes, 0) AS active_minutes,
    coalesce(shipping.merged_changes, 0) AS merged_changes,
    coalesce(shipping.deployed_changes, 0) AS deployed_changes,
    -- unknown (NULL), not 0, when no change of any repository deployed: no deployments were reported
    CASE WHEN (SELECT bool_or(deployed) FROM changes)
         THEN coalesce(shipping.deploying_repo_merged_changes, 0) END AS deploying_repo_merged_changes,
    coalesce(ai_outcome.ai_merged_changes, 0) AS ai_merged_changes,
    coalesce(ai_outcome.ai_deployed_changes, 0) AS ai_deployed_changes,
    -- one piece of work cut into many tiny changes: several per session that fed any (NULL: none fed)
    nullif(ai_outcome.tiny_change_sessions, 0) AS tiny_change_sessions,
    safe_div(ai_outcome.ai_tiny_changes, ai_outcome.tiny_change_sessions) AS tiny_changes_per_session,
    coalesce(ai_shipped_lines.ai_shipped_lines, 0) AS ai_shipped_lines,
    -- value per token: NULL when nothing the week's sessions fed shipped (see unshipped_token_share)
    safe_div(coalesce(volume.tokens, 0), ai_shipped_lines.ai_shipped_lines) AS tokens_per_shipped_line,
    safe_div(volume.output_tokens, volume.requests) AS output_per_request,
    -- a week with prompts but no request has 0 tokens (not NULL): 0 per change, NULL only without changes
    safe_div(coalesce(volume.tokens, 0), shipping.merged_changes) AS tokens_per_merged_change,
    safe_div(coalesce(volume.cost_usd, 0), shipping.merged_changes) AS cost_per_merged_change,
    safe_div(coalesce(volume.tokens, 0), shipping.deployed_changes) AS tokens_per_deployed_change,
    safe_div(coalesce(volume.cost_usd, 0), shipping.deployed_changes) AS cost_per_deployed_change,
    -- value per token from the changes alone (no session evidence: holds where no source reports
    -- lines kept or commits); NULL without a merged line of known size
    safe_div(coalesce(volume.tokens, 0), shipping.merged_lines) AS tokens_per_merged_line,
    coalesce(safe_div(volume.unshipped_tokens, volume.tokens), 0) AS unshipped_token_share,
    coalesce(safe_div(volume.unmerged_tokens, volume.tokens), 0) AS unmerged_token_share,
    coalesce(safe_div(volume.idle_tokens, volume.tokens), 0) AS idle_session_token_share,
    CASE WHEN NOT coalesce(session_activity.repos_unreported, false)
         THEN coalesce(safe_div(volume.codeless_tokens, volume.tokens), 0) END AS codeless_repo_token_share,
    coalesce(safe_div(volume.unknown_outcome_tokens, volume.tokens), 0) AS unknown_outcome_token_share,
    -- no evidence of feeding merged work: unmerged (evidence it fed none) or of unknown outcome
    coalesce(safe_div(coalesce(volume.unmerged_tokens, 0) + coalesce(volume.unknown_outcome_tokens, 0), volume.tokens), 0)
        AS unevidenced_token_share,
    coalesce(prompting.commits_made, 0) AS commits_made,
    coalesce(volume.unshipped_cost_usd, 0) AS unshipped_cost_usd,
    coalesce(prompting.exact_repeat_share, 0) AS exact_repeat_share,
    coalesce(prompting.near_repeat_share, 0) AS near_repeat_share,
    coalesce(prompting.exact_repeat_share_week, 0) AS exact_repeat_share_week,
    prompting.exact_repeat_unkept_share_week,
    CASE WHEN prompting.exact_repeat_unkept_share_week IS NOT NULL
        THEN padding.padded_session_prompts / prompting.prompts END AS repeat_padded_prompt_share_week,
    coalesce(prompting.near_repeat_share_week, 0) AS near_repeat_share_week,
    coalesce(session_activity.longest_near_run, 0) AS longest_near_run,
    prompting.gap_cv,
    coalesce(safe_div(volume.night_tokens, volume.tokens), 0) AS night_share,
    coalesce(safe_div(volume.weekend_tokens, volume.tokens), 0) AS weekend_share,
    coalesce(safe_div(volume.off_hours_tokens, volume.tokens), 0) AS off_hours_share,
    coalesce(safe_div(peaks.peak_3h_tokens, volume.tokens), 0) AS peak_3h_token_share,
    coalesce(safe_div(volume.snapshot_tokens, volume.tokens), 0) AS snapshot_window_share,
    -- unknown (NULL) when no prompt of the week reports lines; a lower bound when only some do
    safe_div(prompting.lines_accepted, volume.tokens / 1000.0) AS lines_accepted_per_ktok,
    safe_div(volume.output_tokens, volume.input_tokens) AS output_input_ratio,
    safe_div(volume.cache_read_tokens, volume.tokens) AS cache_read_share,
    safe_div(coalesce(volume.requests, 0), prompting.prompts) AS requests_per_prompt,
    prompting.no_repo_prompt_share,
    prompting.mean_prompt_length,
    coalesce(shipping.tiny_change_share, 0) AS tiny_change_share,
    coalesce(shipping.tiny_merged_changes, 0) AS tiny_merged_changes,
    shipping.deployments_per_change,
    shipping.mean_change_lines,
    shipping.merged_lines
FROM user_weeks
LEFT JOIN volume USING (user_id, week_start)
LEFT JOIN peaks USING (user_id, week_start)
LEFT JOIN prompting USING (user_id, week_start)
LEFT JOIN padding USING (user_id, week_start)
LEFT JOIN session_activity USING (user_id, week_start)
LEFT JOIN active_time USING (user_id, week_start)
LEFT JOIN ai_outcome USING (user_id, week_start)
LEFT JOIN ai_shipped_lines USING (user_id, week_start)
LEFT JOIN shipping USING (user_id, week_start)
LEFT JOIN directory ON directory.user_id = user_weeks.user_id
