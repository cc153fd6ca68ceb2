-- kind: full
-- grain: session_id, change_id
-- temporary: true
-- tags: case_file
-- case_links: how each of the week's sessions is linked to shipped work (the `links` view).
SELECT links.*
FROM links
WHERE links.session_id IN (SELECT session_id FROM case_sessions)
