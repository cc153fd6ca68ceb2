-- kind: full
-- grain: kind, id
-- temporary: true
-- tags: case_file
-- case_events: the person's shipped work in the flag's week: each change they merged, and the
-- first successful deployment of each of their changes, with whether AI sessions are linked to it.
WITH
flag AS (FROM case_flag),
own AS (
    SELECT c.*, EXISTS (
        SELECT 1 FROM session_links AS l WHERE l.change_id = c.change_id AND l.credit > 0
    ) AS ai_linked
    FROM change_deployments AS c, flag
    WHERE c.author_id = flag.user_id
)
SELECT merged_at AS ts, 'merged change' AS event, change_id, repo, lines_changed, ai_linked
FROM own, flag WHERE merged_at >= flag.window_start AND merged_at < flag.window_end
UNION ALL
SELECT first_deployed_at, 'deployment', change_id, repo, lines_changed, ai_linked
FROM own, flag WHERE first_deployed_at >= flag.window_start AND first_deployed_at < flag.window_end
