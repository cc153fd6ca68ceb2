-- kind: incremental_by_week
-- grain: session_id, change_id
-- session_links: one row per (session_id, change_id) that the session may have fed, with how we
-- know and how much credit the evidence gives it.
-- explicit_session_id: the change names the session; explicit_commit: the change merges a commit
-- the assistant made in the session; explicit_review: a review of the change names the session;
-- inferred_author_repo_window: same author and repository, merged between the session's start and
-- `link_window_hours` after its end; inferred_review_window: the session's person reviewed the
-- change, in its repository, within `review_window_hours` after the session (review work ships
-- through the reviewed change, whoever wrote it).
-- credit: what the session plausibly produced of the change, on evidence, not on proximity in
-- time (the bar of Anthropic's PR attribution: a session counts toward a PR only when its output
-- matches the PR's lines). An explicit link is full credit (1). A window link is credited by the
-- lines the session kept in the change's repository against the change's size, at most 1 (a
-- session's own evidence only, so an incremental build computes it from the session alone): a
-- session that kept no code gets 0 from a time window alone; one whose source reports no lines
-- gets NULL (unknown, not zero: `evidence` says so). A window link also gets 0 when stronger
-- evidence places the session's work elsewhere: the session is linked explicitly (a trailer, a
-- commit it made, a review naming it) to any change; the change names its AI sessions and not this
-- one; the change lists every commit it merged (scope `all`, not only branch heads), none of them
-- one of the commits this session made in the repository, and shows it was not squashed (it
-- merges commits other sessions made, or lists three or more); or an earlier change of the author's
-- in that repository, not so excluded, merged after the session started (work ships in the next
-- change, not in every one of the following days). A window review link is credited when the
-- review carried feedback (comments, or changes requested) and gets 0 for a bare approval (nothing
-- the session could have produced shows), or when every review of the person's in the window
-- names its AI sessions and not this one; NULL when the comment count is not reported.
-- weight splits each session's tokens over its credited (or unknown) links so nothing is
-- attributed twice; an uncredited link weighs 0.

-- NOT MATERIALIZED: DuckDB materializes a CTE read more than once. The import CTEs are table
-- scans (inlined, each reader reads its own columns), and `credited` is computed twice instead of
-- held: held, at 100M token rows (9.2M links) the model ran out of the 3GB memory limit; computed
-- twice it builds within 2GB (10M: about 0.3 s more, the same rows).

WITH
sessions AS NOT MATERIALIZED (SELECT * FROM sessions),
raw_changes AS NOT MATERIALIZED (SELECT * FROM changes),
reviews AS NOT MATERIALIZED (SELECT * FROM reviews),
changes AS NOT MATERIALIZED (SELECT * FROM change_deployments),
prompts AS (SELECT session_id, commit_sha FROM invocations WHERE commit_sha IS NOT NULL),
kept AS (
    -- lines kept and commits made per session and repository; lines NULL when no prompt there reported any
    SELECT session_id, repo, sum(lines_accepted) AS lines_kept, count(commit_sha) AS commits_made
    FROM invocations
    WHERE repo IS NOT NULL
    GROUP BY session_id, repo
),

named_sessions AS (
    SELECT change_id, unnest(ai_session_ids) AS session_id
    FROM raw_changes
),

merged_commits AS (
    SELECT change_id, lower(unnest(commit_shas)) AS commit_sha
    FROM raw_changes
),

explicit_session AS (
    SELECT named.session_id, named.change_id, 'explicit_session_id' AS method, 1 AS priority, 1.0 AS confidence
    FROM named_sessions AS named
    JOIN sessions USING (session_id)
),

explicit_commit AS (
    SELECT DISTINCT prompts.session_id, merged.change_id, 'explicit_commit' AS method, 2 AS priority, 1.0 AS confidence
    FROM prompts
    JOIN merged_commits AS merged ON merged.commit_sha = lower(prompts.commit_sha)
),

held_review_sessions AS (
    -- the sessions we hold that a review names
    SELECT named.review_id, named.change_id, named.session_id
    FROM (SELECT review_id, change_id, unnest(ai_session_ids) AS session_id FROM reviews) AS named
    JOIN sessions USING (session_id)
),

explicit_review AS (
    SELECT DISTINCT session_id, change_id, 'explicit_review' AS method, 3 AS priority, 1.0 AS confidence
    FROM held_review_sessions
),

session_repos AS (
    SELECT session_id, user_id, started_at, ended_at, unnest(repos) AS repo
    FROM sessions
),

inferred AS (
    SELECT
        s.session_id,
        c.change_id,
        'inferred_author_repo_window' AS method,
        4 AS priority,
        0.3 + 0.4 * (1 - greatest(epoch(c.merged_at - s.ended_at) / 3600.0, 0) / getvariable('link_window_hours')) AS confidence
    FROM session_repos AS s
    JOIN changes AS c
        ON c.author_id = s.user_id
        AND c.repo = s.repo
        AND in_window(c.merged_at, s.started_at, s.ended_at, getvariable('link_window_hours'))
),

review_window_rows AS (
    -- each review of the session's person, in its repository, within the window after it
    SELECT
        s.session_id,
        r.change_id,
        r.submitted_at,
        s.ended_at,
        named.review_id IS NOT NULL AS names_sessions
    FROM session_repos AS s
    JOIN reviews AS r
        ON r.reviewer_id = s.user_id
        AND in_window(r.submitted_at, s.started_at, s.ended_at, getvariable('review_window_hours'))
    JOIN changes AS c ON c.change_id = r.change_id AND c.repo = s.repo
    -- a review that names a session we hold has said which sessions fed it
    LEFT JOIN (SELECT DISTINCT review_id FROM held_review_sessions) AS named ON named.review_id = r.review_id
),

inferred_review AS (
    SELECT
        session_id,
        change_id,
        'inferred_review_window' AS method,
        5 AS priority,
        0.3 + 0.4 * (1 - greatest(epoch(submitted_at - ended_at) / 3600.0, 0) / getvariable('review_window_hours')) AS confidence
    FROM review_window_rows
),

review_window_links AS (
    -- naming this session would make the link explicit
    SELECT session_id, change_id, bool_and(names_sessions) AS names_other_sessions
    FROM review_window_rows
    GROUP BY session_id, change_id
),

explicitly_linked AS (
    -- sessions whose work a change or review names: their window links are not evidence
    SELECT DISTINCT session_id FROM explicit_session
    UNION SELECT session_id FROM explicit_commit
    UNION SELECT session_id FROM explicit_review
),

window_links AS (
    -- a window link and whether the change's own declaration leaves this session out
    SELECT
        inferred.session_id,
        inferred.change_id,
        c.repo,
        c.merged_at,
        c.names_ai_sessions AS names_other_sessions,  -- naming this one would make the link explicit
        -- three or more: a list of two may be a merge commit and the branch head, whatever it claims
        coalesce(kept.commits_made > 0 AND c.lists_all_commits AND (c.merges_ai_commits OR c.listed_commits >= 3), false)
            AS lists_other_commits,
        -- added lines the sessions the change declares did not keep: all a window session can have written
        c.lines_added - c.evidenced_lines AS added_lines_left,
        coalesce(c.lines_added <= c.evidenced_lines, false) AS declared_sessions_wrote_it
    FROM inferred
    JOIN changes AS c USING (change_id)
    LEFT JOIN kept ON kept.session_id = inferred.session_id AND kept.repo = c.repo
),

next_merge AS (
    -- per session and repository, the first of the author's changes merged in its window that
    -- does not leave the session out
    SELECT session_id, repo, min(merged_at) AS merged_at
    FROM window_links
    WHERE NOT (names_other_sessions OR lists_other_commits OR declared_sessions_wrote_it)
    GROUP BY session_id, repo
),

review_feedback AS (
    -- per (reviewer, change): did any review carry feedback a session could have produced?
    SELECT reviewer_id, change_id,
           bool_or(comments > 0 OR state = 'changes_requested') AS gave_feedback,
           bool_and(comments IS NULL) AS comments_unknown
    FROM reviews
    GROUP BY ALL
),

candidates AS (
    SELECT * FROM explicit_session
    UNION ALL SELECT * FROM explicit_commit
    UNION ALL SELECT * FROM explicit_review
    UNION ALL SELECT * FROM inferred
    UNION ALL SELECT * FROM inferred_review
),

pairs AS (
    -- fixed-size aggregate states only (no lists or strings), so the GROUP BY spills to disk
    -- under the memory limit instead of failing
    SELECT
        session_id,
        change_id,
        CASE min(priority) WHEN 1 THEN 'explicit_session_id' WHEN 2 THEN 'explicit_commit'
            WHEN 3 THEN 'explicit_review' WHEN 4 THEN 'inferred_author_repo_window'
            ELSE 'inferred_review_window' END AS method,
        list_filter([
            CASE WHEN bool_or(priority = 2) THEN 'explicit_commit' END,
            CASE WHEN bool_or(priority = 1) THEN 'explicit_session_id' END,
            CASE WHEN bool_or(priority = 3) THEN 'explicit_review' END,
            CASE WHEN bool_or(priority = 4) THEN 'inferred_author_repo_window' END,
            CASE WHEN bool_or(priority = 5) THEN 'inferred_review_window' END
        ], lambda method: method IS NOT NULL) AS methods,
        max(confidence) AS confidence
    FROM candidates
    GROUP BY session_id, change_id
),

credited AS NOT MATERIALIZED (
    SELECT
        pairs.*,
        kept.lines_kept,
        kept.commits_made,
        feedback.gave_feedback,
        feedback.comments_unknown,
        linked.session_id IS NOT NULL AS linked_elsewhere,
        coalesce(review_window.names_other_sessions, false) AS review_names_other_sessions,
        coalesce(window_link.names_other_sessions, false) AS names_other_sessions,
        coalesce(window_link.lists_other_commits, false) AS lists_other_commits,
        coalesce(window_link.declared_sessions_wrote_it, false) AS declared_sessions_wrote_it,
        window_link.added_lines_left,
        coalesce(changes.merged_at > next_merge.merged_at, false) AS earlier_change,
        CASE
            WHEN pairs.method LIKE 'explicit%' THEN 1.0
            WHEN pairs.method = 'inferred_review_window' THEN
                -- a session that wrote code in the repository was authoring, not reviewing
                CASE WHEN kept.lines_kept > 0 OR kept.commits_made > 0 OR review_window.names_other_sessions THEN 0.0
                     WHEN feedback.gave_feedback THEN 1.0 WHEN feedback.comments_unknown THEN NULL ELSE 0.0 END
            WHEN linked.session_id IS NOT NULL OR window_link.names_other_sessions OR window_link.lists_other_commits
                 OR changes.merged_at > next_merge.merged_at THEN 0.0
            WHEN kept.lines_kept = 0 THEN 0.0
            WHEN window_link.declared_sessions_wrote_it THEN 0.0
            WHEN changes.lines_changed IS NULL THEN NULL
            -- lines unknown for the session: the AI tool's own tracking of the change's commits
            WHEN kept.lines_kept IS NULL AND changes.author_ai_lines IS NOT NULL
                THEN least(changes.author_ai_lines / greatest(changes.lines_changed, 1), 1.0)
            WHEN kept.lines_kept IS NULL THEN NULL
            -- at most what the sessions the change declares left of its added lines
            ELSE least(least(kept.lines_kept, coalesce(window_link.added_lines_left, kept.lines_kept))
                       / greatest(changes.lines_changed, 1), 1.0)
        END AS credit
    FROM pairs
    JOIN changes USING (change_id)
    JOIN sessions USING (session_id)
    LEFT JOIN kept ON kept.session_id = pairs.session_id AND kept.repo = changes.repo
    LEFT JOIN explicitly_linked AS linked
        ON pairs.method = 'inferred_author_repo_window' AND linked.session_id = pairs.session_id
    LEFT JOIN window_links AS window_link
        ON pairs.method = 'inferred_author_repo_window'
        AND window_link.session_id = pairs.session_id AND window_link.change_id = pairs.change_id
    LEFT JOIN next_merge
        ON pairs.method = 'inferred_author_repo_window'
        AND next_merge.session_id = pairs.session_id AND next_merge.repo = changes.repo
    LEFT JOIN review_window_links AS review_window
        ON pairs.method = 'inferred_review_window'
        AND review_window.session_id = pairs.session_id AND review_window.change_id = pairs.change_id
    LEFT JOIN review_feedback AS feedback
        ON pairs.method = 'inferred_review_window'
        AND feedback.reviewer_id = sessions.user_id AND feedback.change_id = pairs.change_id
),

session_credit AS (
    -- the confidence each session spreads over its links: an aggregate joined back, not a window
    -- (a window partitioned by session without ORDER BY did not spill: at 100M token rows it ran
    -- out of a 3GB memory limit; an aggregate spills)
    SELECT session_id, sum(confidence) FILTER (WHERE credit IS DISTINCT FROM 0) AS credited_confidence
    FROM credited
    GROUP BY session_id
)

SELECT
    credited.session_id,
    credited.change_id,
    credited.method,
    credited.methods,
    credited.confidence,
    epoch(changes.merged_at - sessions.ended_at) / 3600.0 AS lag_hours,
    CASE WHEN credited.credit = 0 THEN 0.0
         ELSE credited.confidence / session_credit.credited_confidence END AS weight,
    credited.credit,
    CASE
        WHEN credited.method = 'explicit_session_id' THEN 'the change names the session'
        WHEN credited.method = 'explicit_commit' THEN 'the change merges a commit the session made'
        WHEN credited.method = 'explicit_review' THEN 'a review of the change names the session'
        WHEN credited.method = 'inferred_review_window' THEN
            CASE WHEN credited.lines_kept > 0 OR credited.commits_made > 0
                     THEN 'time window only: the session wrote code in the repository, so it was not the review'
                 WHEN credited.review_names_other_sessions THEN 'time window only: the person''s review names its AI sessions, not this one'
                 WHEN credited.gave_feedback THEN 'time window only: the person reviewed the change with feedback'
                 WHEN credited.comments_unknown THEN 'time window only: the person reviewed the change (comments not reported)'
                 ELSE 'time window only: the person approved the change without feedback' END
        WHEN credited.linked_elsewhere THEN 'time window only: the session is linked on evidence to another change'
        WHEN credited.names_other_sessions THEN 'time window only: the change names its AI sessions, not this one'
        WHEN credited.lists_other_commits
            THEN 'time window only: the change lists every commit it merged, none of the commits this session made'
        WHEN credited.earlier_change THEN 'time window only: an earlier change of the author''s in the repository took the session''s work'
        WHEN credited.lines_kept = 0 THEN 'time window only: the session kept no code in the repository'
        -- before the session's unreported lines: the change has no lines left for it whatever it kept
        WHEN credited.declared_sessions_wrote_it
            THEN printf('time window only: the sessions the change declares kept %d lines, all of its %d added lines',
                        round(changes.evidenced_lines)::BIGINT, changes.lines_added::BIGINT)
        WHEN credited.lines_kept IS NULL AND changes.lines_changed IS NOT NULL AND changes.author_ai_lines IS NOT NULL
            THEN printf('time window only: the source reports no lines kept; the AI tool''s code tracking counts %d AI-written lines of the author''s in this %d-line change',
                        changes.author_ai_lines::BIGINT, changes.lines_changed::BIGINT)
        WHEN credited.lines_kept IS NULL THEN 'time window only: the source reports no lines kept (unknown)'
        WHEN changes.lines_changed IS NULL
            THEN printf('time window only: %d lines kept in the repository; the change''s size is not reported (unknown)',
                        credited.lines_kept::BIGINT)
        WHEN credited.lines_kept > credited.added_lines_left
            THEN printf('%d lines kept in the repository, of a %d-line change; the sessions it declares kept %d of its %d added lines',
                        credited.lines_kept::BIGINT, changes.lines_changed::BIGINT, round(changes.evidenced_lines)::BIGINT,
                        changes.lines_added::BIGINT)
        ELSE printf('%d lines kept in the repository, of a %d-line change', credited.lines_kept::BIGINT,
                    changes.lines_changed::BIGINT)
    END AS evidence,
    sessions.week_start  -- the session's week: the partition an incremental run rebuilds
FROM credited
JOIN session_credit USING (session_id)
JOIN sessions USING (session_id)
JOIN changes USING (change_id)
