-- kind: incremental_by_week
-- grain: session_id
-- session_features: one row per session (session_id): the session, its outcome (credited links to
-- merged and deployed changes, see session_links), prompt repetition, cadence and work signal, and
-- what kind of unshipped session it was (unmerged, codeless, idle), decided once here: the week's
-- shares read them, and so do the rules that name a flagged week's sessions.
-- Import CTEs NOT MATERIALIZED (docs/features.md): 100M token rows 62 -> 43 s, 10M about 0.3 s less.

WITH
sessions AS NOT MATERIALIZED (SELECT * FROM sessions),
links AS NOT MATERIALIZED (SELECT * FROM session_links),
changes AS NOT MATERIALIZED (SELECT * FROM change_deployments),
repeats AS NOT MATERIALIZED (SELECT * FROM prompt_repeats),
prompts AS NOT MATERIALIZED (SELECT invocation_id, session_id, repo, repo_unreported, prompt_length FROM invocations),
spend AS NOT MATERIALIZED (SELECT DISTINCT session_id, tool FROM session_spend),

outcome AS (
    -- linked: a link with credit, or whose credit is unknown (its source reports no lines); a
    -- window link the evidence gives no credit (no code kept) is not a link
    SELECT
        links.session_id,
        list_sort(list(links.change_id)) AS linked_change_ids,
        count(*) AS linked_changes,
        count(*) FILTER (WHERE changes.merged_at IS NOT NULL) AS merged_changes,
        count(*) FILTER (WHERE changes.merged_at IS NOT NULL AND links.credit > 0) AS credited_merged_changes,
        count(*) FILTER (WHERE changes.merged_at IS NOT NULL AND changes.is_tiny) AS tiny_changes,
        count(*) FILTER (WHERE changes.deployed AND links.credit > 0) AS deployed_changes,
        bool_or(changes.deployed AND links.credit IS NULL) AS maybe_deployed,
        least(sum(links.credit) FILTER (WHERE changes.deployed), 1.0) AS deployed_credit
    FROM links
    JOIN changes USING (change_id)
    WHERE links.credit IS DISTINCT FROM 0
    GROUP BY links.session_id
),

runs AS (
    -- islands of consecutive near-identical prompts: a new island starts at every prompt that is
    -- not near-identical to the one before it
    SELECT
        session_id,
        sum(CASE WHEN near_previous THEN 0 ELSE 1 END)
            OVER (PARTITION BY session_id ORDER BY ts, invocation_id ROWS UNBOUNDED PRECEDING) AS island
    FROM repeats
),

longest_runs AS (
    SELECT session_id, max(run_length) AS longest_near_run
    FROM (SELECT session_id, island, count(*) AS run_length FROM runs GROUP BY ALL)
    GROUP BY session_id
),

cadence AS (
    SELECT
        session_id,
        CASE WHEN count(gap_seconds) >= 2 THEN safe_div(stddev_samp(gap_seconds), avg(gap_seconds)) END AS gap_cv
    FROM repeats
    GROUP BY session_id
),

median_gaps AS (
    -- the median gap (the middle one, or the mean of the two middle ones) from a sort, not
    -- median(): that aggregate keeps every gap of every session in memory at once and cannot spill
    -- (at 100M token rows it failed under a 2GB limit, and took 129 s where this takes 66 s)
    SELECT session_id, avg(gap_seconds) AS median_gap_seconds
    FROM (
        SELECT
            session_id,
            gap_seconds,
            row_number() OVER (PARTITION BY session_id ORDER BY gap_seconds) AS gap_rank,
            count(*) OVER (PARTITION BY session_id) AS gaps
        FROM repeats
        WHERE gap_seconds IS NOT NULL
    )
    WHERE gap_rank IN ((gaps + 1) // 2, (gaps + 2) // 2)
    GROUP BY session_id
),

prompt_mix AS (
    SELECT
        prompts.session_id,
        avg(CAST(repeats.exact_repeat_in_session AS DOUBLE)) AS exact_repeat_share,
        avg(CAST(repeats.near_repeat_in_session AS DOUBLE)) AS near_repeat_share,
        -- of the prompts whose repository context is known: NULL when the source reports none
        avg(CAST(prompts.repo IS NULL AS DOUBLE)) FILTER (WHERE prompts.repo IS NOT NULL OR NOT prompts.repo_unreported)
            AS no_repo_prompt_share,
        avg(prompts.prompt_length) AS mean_prompt_length
    FROM prompts
    JOIN repeats USING (invocation_id)
    GROUP BY prompts.session_id
),

session_tools AS (
    -- each session's AI tools (the clients named in token_usage), the week it started, and whether
    -- it reported a commit the assistant made
    SELECT spend.session_id, spend.tool, sessions.week_start, len(sessions.commit_shas) > 0 AS committed
    FROM spend
    JOIN sessions USING (session_id)
),

tool_weeks AS (
    -- a tool none of whose sessions started that week reported a commit does not report commits,
    -- so a session of it that kept code and shows none may still be pending
    SELECT tool, week_start, bool_or(committed) AS reports_commits
    FROM session_tools
    GROUP BY ALL
),

commit_reporting AS (
    SELECT session_tools.session_id, bool_or(tool_weeks.reports_commits) AS commits_reported
    FROM session_tools
    JOIN tool_weeks USING (tool, week_start)
    GROUP BY ALL
),

session_rows AS (
SELECT
    sessions.*,
    coalesce(outcome.linked_change_ids, []) AS linked_change_ids,
    coalesce(outcome.linked_changes, 0) AS linked_changes,
    coalesce(outcome.merged_changes, 0) AS merged_changes,
    coalesce(outcome.credited_merged_changes, 0) AS credited_merged_changes,
    coalesce(outcome.tiny_changes, 0) AS tiny_changes,
    -- the session's tools report no commit all week (a session without requests: taken as reported)
    NOT coalesce(commit_reporting.commits_reported, true) AS commits_unreported,
    coalesce(outcome.deployed_changes, 0) AS deployed_changes,
    -- TRUE: a credited link reached a successful deployment; NULL: only a link of unknown credit did
    -- (the source reports no lines kept), or nothing links it to a merged change while it kept code
    -- (or may have: lines unknown) in a repository its source does not name, so no window could;
    -- FALSE: no evidence that anything the session fed shipped
    CASE WHEN coalesce(outcome.deployed_changes, 0) > 0 THEN true
         WHEN outcome.maybe_deployed THEN NULL
         WHEN sessions.repo_unreported AND coalesce(outcome.merged_changes, 0) = 0
              AND coalesce(sessions.lines_accepted > 0, true) THEN NULL
         ELSE false END AS deployed,
    coalesce(outcome.deployed_credit, 0.0) AS deployed_credit,
    coalesce(prompt_mix.exact_repeat_share, 0) AS exact_repeat_share,
    coalesce(prompt_mix.near_repeat_share, 0) AS near_repeat_share,
    coalesce(longest_runs.longest_near_run, 0) AS longest_near_run,
    cadence.gap_cv,
    median_gaps.median_gap_seconds,
    safe_div(sessions.tokens, sessions.prompts) AS tokens_per_prompt,
    safe_div(sessions.requests, sessions.prompts) AS requests_per_prompt,
    safe_div(sessions.lines_accepted, sessions.tokens / 1000.0) AS lines_accepted_per_ktok,
    safe_div(sessions.output_tokens, sessions.input_tokens) AS output_input_ratio,
    safe_div(sessions.output_tokens, sessions.requests) AS output_per_request,
    safe_div(sessions.cache_read_tokens, sessions.tokens) AS cache_read_share,
    prompt_mix.no_repo_prompt_share,
    prompt_mix.mean_prompt_length
FROM sessions
LEFT JOIN outcome USING (session_id)
LEFT JOIN longest_runs USING (session_id)
LEFT JOIN cadence USING (session_id)
LEFT JOIN median_gaps USING (session_id)
LEFT JOIN prompt_mix USING (session_id)
LEFT JOIN commit_reporting USING (session_id)
)

SELECT
    *,
    -- unmerged: fed no merged change on evidence (deployed or not: research that never deploys still
    -- merges); a session that committed code may feed a change still in review (a long migration
    -- merges weeks later): pending, not unmerged. Unknown (no lines reported) is not unmerged.
    -- When the session's tools report no commit all week (they may not report commits), a session
    -- that kept code is not unmerged either: it may be pending, which a commit would have shown.
    coalesce(merged_changes = 0 AND deployed IS NOT NULL AND len(commit_shas) = 0
             AND NOT (coalesce(lines_accepted > 0, false) AND commits_unreported), false) AS unmerged,
    -- codeless: worked in a repository, kept no code (lines reported, all 0) and fed no merged
    -- change on evidence: exploration, or volume dressed as work
    coalesce(len(repos) > 0 AND lines_accepted = 0 AND merged_changes = 0 AND deployed IS NOT NULL, false) AS codeless,
    -- idle: an agent kept busy, many calls of almost no output each, no code kept (known), nothing
    -- deployed. Honest agent calls write ~500 tokens (Copilot and TraceLab traces); a session whose
    -- lines are not reported is never idle.
    coalesce(requests >= getvariable('idle_min_requests')
             AND output_per_request <= getvariable('idle_output_per_request')
             AND lines_accepted = 0 AND NOT deployed, false) AS idle,
    -- unknown_outcome: linked to merged changes by time windows only, none of them credited because
    -- the source reports no lines kept (or a review no comment count), and no commit of its own:
    -- nothing shows it fed merged work, and nothing shows it did not. Not waste on evidence (that
    -- is unmerged); a rule reads it only where the person's source reports commits.
    -- Or: it kept code, fed no merged change, and its tools report no commits (pending, or never to merge).
    -- Or: it kept code (or may have), and its source names no repository a window could link it by.
    coalesce(len(commit_shas) = 0 AND (
        (credited_merged_changes = 0 AND merged_changes > 0)
        OR (merged_changes = 0 AND deployed IS NOT NULL AND lines_accepted > 0 AND commits_unreported)
        OR (merged_changes = 0 AND deployed IS NULL AND repo_unreported)
    ), false) AS unknown_outcome,
    -- unevidenced: no evidence it fed merged work, either way (unmerged or of unknown outcome)
    unmerged OR unknown_outcome AS unevidenced
FROM session_rows
