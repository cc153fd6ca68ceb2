"""After each load: join the identities and commits that different sources name differently.

Every step works on the whole raw tables (not only this run's rows), so a people file or a change
arriving after the usage or the deployment that needs it fixes the earlier rows too, and running
it again changes nothing. One exception keeps a daily load from rewriting all history: when the
load brought no people or alias rows, step 1 looks at its own rows only (the earlier ones were
resolved under the same claims when they were loaded; 0.5 s of a 10M-row history's daily run).

1. Identities. An identity (a user_id, an email, a login, an account uuid) belongs to at most one
   person: `people.user_id` and its `people_aliases` (case-insensitive; the loader rejects a people
   row claiming an identity someone else already has). Rows of token_usage, invocations (user_id),
   changes (author_id), reviews (reviewer_id) and ai_commits (user_id) whose identity is an alias or
   a differently-cased id get the person's user_id. The rewrite is in place: since an identity's
   owner never changes once loaded, the result does not depend on the order files arrived in.
2. Deployments that name commits (`deployment_commits`): change_ids gains every change of the same
   repository that is, or was shipped with, a named commit: the merged changes whose commit_shas
   hold a named commit (the anchors), and the changes merged after the newest anchor of the
   repository's earlier successful deployments (none anchored: every change merged before) and up
   to this one's newest anchor (the changes a deploy of that commit contains on a linear main
   branch). change_ids only grows.
3. Repositories of source rows (not contract files, where an empty repo means no repository
   context): a bare name (no '/', e.g. the folder of Claude Code's workspace path) that is the last
   part of exactly one OWNER/NAME repository among the changes becomes that repository, once and for
   all (`resolved_repositories`); a session none of whose prompts names a repository gets the one
   repository whose changes merged the commits it made, when there is one.
4. `unmapped_identities`: each identity in the usage, change, review and AI commit rows that names
   no person in people, with its source, dataset and row count. Those rows are loaded all the same (team
   'unassigned'); this table says which identities a people file should map. Like step 1, a load
   that brought no people or alias rows adds its own rows' counts to the table instead of counting
   every row again (no earlier row's identity or mapping changed); a purge recounts it whole
   (`recount_unmapped_identities`).
"""
from __future__ import annotations

import duckdb

from pipeline.storage import has_table


def reconcile(con: duckdb.DuckDBPyConnection, *, first_new_file_id: int | None = None) -> None:
    """Resolve aliases, derive deployment change_ids from commits, count unmapped_identities; one commit.

    `first_new_file_id`: the first file id of the load just done. When that load brought no people
    or alias rows (the claims are those every earlier load resolved its rows under), only its own
    rows' identities are rewritten; otherwise every row's are. (None: every row's.)"""
    con.begin()
    try:
        con.execute(CLAIMS_SQL)
        only_new = first_new_file_id is not None and not _claims_grew(con, first_new_file_id)
        for table, column in IDENTITY_COLUMNS:
            con.execute(
                f"UPDATE main.{table} SET {column} = c.owner FROM __claims c "
                f"WHERE lower(trim(main.{table}.{column})) = c.key AND main.{table}.{column} <> c.owner"
                + (f" AND main.{table}.file_id >= {int(first_new_file_id)}" if only_new else "")
            )
        con.execute(DEPLOYMENT_CHANGES_SQL)
        if con.sql(f"SELECT 1 FROM main.loaded_files f WHERE {FROM_SOURCE} LIMIT 1").fetchall():
            con.execute(REPOSITORIES_SQL.format(from_source=FROM_SOURCE))  # source rows only: contract files are left as given
        counted = only_new and has_table(con, "unmapped_identities")
        con.execute(unmapped_sql(first_new_file_id if counted else None))
        con.execute("DROP TABLE IF EXISTS __claims; DROP TABLE IF EXISTS __deployment_changes")
        con.commit()
    except BaseException:
        con.rollback()
        raise


def recount_unmapped_identities(con: duckdb.DuckDBPyConnection) -> None:
    """Count `unmapped_identities` from every row again (after rows were deleted: a purge)."""
    con.execute(unmapped_sql(None))


def unmapped_sql(first_new_file_id: int | None) -> str:
    """Rebuild `unmapped_identities` from every row (None), or as the stored counts plus those of
    the rows of files from `first_new_file_id` on."""
    new_rows = "" if first_new_file_id is None else f" AND file_id >= {int(first_new_file_id)}"
    stored = "" if first_new_file_id is None else "SELECT source, dataset, identity, rows FROM main.unmapped_identities UNION ALL "
    return UNMAPPED_SQL.format(new_rows=new_rows, stored=stored)


def _claims_grew(con: duckdb.DuckDBPyConnection, first_new_file_id: int) -> bool:
    """Whether people or alias rows came with the files from `first_new_file_id` on (claims only
    grow: a people row claiming an identity someone else has is rejected at load)."""
    return bool(con.execute(
        "SELECT 1 FROM main.people WHERE file_id >= $id UNION ALL SELECT 1 FROM main.people_aliases WHERE file_id >= $id LIMIT 1",
        {"id": first_new_file_id},
    ).fetchall())


# settings
IDENTITY_COLUMNS = (
    ("token_usage", "user_id"), ("invocations", "user_id"), ("changes", "author_id"), ("reviews", "reviewer_id"),
    ("ai_commits", "user_id"),
)

# identity key (lowercased) -> the one person it belongs to
CLAIMS_SQL = """
CREATE OR REPLACE TEMP TABLE __claims AS
SELECT key, min(owner) AS owner
FROM (
    SELECT lower(trim(user_id)) AS key, user_id AS owner FROM main.people
    UNION ALL
    SELECT lower(trim(alias)), user_id FROM main.people_aliases
)
GROUP BY key
HAVING count(DISTINCT owner) = 1
"""

DEPLOYMENT_CHANGES_SQL = """
CREATE OR REPLACE TEMP TABLE __deployment_changes AS
WITH
named AS (
    SELECT d.deployment_id, d.repo, d.deployed_at, d.status, lower(trim(dc.commit_sha)) AS sha
    FROM main.deployments d JOIN main.deployment_commits dc USING (deployment_id)
),
change_commits AS (
    SELECT change_id, repo, merged_at, lower(trim(unnest(commit_shas))) AS sha
    FROM main.changes WHERE merged_at IS NOT NULL
),
anchors AS (
    SELECT DISTINCT n.deployment_id, n.repo, n.deployed_at, n.status, c.change_id, c.merged_at
    FROM named n JOIN change_commits c ON c.sha = n.sha AND c.repo = n.repo AND c.merged_at <= n.deployed_at
),
tips AS (
    SELECT deployment_id, repo, deployed_at, status, max(merged_at) AS tip
    FROM anchors GROUP BY ALL
),
windows AS (
    SELECT t.deployment_id, t.repo, t.tip,
           max(p.tip) AS previous_tip  -- newest anchor of an earlier successful deployment
    FROM tips t
    LEFT JOIN tips p ON p.repo = t.repo AND p.status = 'success' AND p.deployed_at < t.deployed_at
    GROUP BY ALL
),
contained AS (
    SELECT w.deployment_id, c.change_id
    FROM windows w
    -- no earlier successful deployment anchored (the repository's first): everything merged up to its tip
    JOIN main.changes c ON c.repo = w.repo AND (w.previous_tip IS NULL OR c.merged_at > w.previous_tip)
                        AND c.merged_at <= w.tip
    UNION
    SELECT deployment_id, change_id FROM anchors
)
SELECT deployment_id, list_sort(list(DISTINCT change_id)) AS change_ids
FROM contained GROUP BY deployment_id;

UPDATE main.deployments
SET change_ids = list_sort(list_distinct(coalesce(main.deployments.change_ids, []) || x.change_ids))
FROM __deployment_changes x
WHERE main.deployments.deployment_id = x.deployment_id
  AND NOT list_has_all(coalesce(main.deployments.change_ids, []), x.change_ids);
"""

# a file a source adapter read: loaded_files.source names it ('contract' for a contract file; NULL in
# rows loaded before the column existed, all contract files)
FROM_SOURCE = "coalesce(f.source, 'contract') <> 'contract'"

REPOSITORIES_SQL = """
INSERT INTO main.resolved_repositories
SELECT bare.name, min(c.repo), (SELECT coalesce(max(file_id), 0) FROM main.loaded_files)
FROM (
    SELECT DISTINCT lower(i.repo) AS name
    FROM main.invocations i JOIN main.loaded_files f USING (file_id)
    WHERE {from_source} AND i.repo IS NOT NULL AND NOT contains(i.repo, '/')
) AS bare
JOIN (SELECT DISTINCT repo FROM main.changes WHERE contains(repo, '/')) AS c
    ON ends_with(lower(c.repo), '/' || bare.name)
WHERE bare.name NOT IN (SELECT name FROM main.resolved_repositories)
GROUP BY bare.name
HAVING count(DISTINCT c.repo) = 1;

UPDATE main.invocations SET repo = r.repo
FROM main.resolved_repositories r
WHERE lower(main.invocations.repo) = r.name
  AND main.invocations.file_id IN (SELECT file_id FROM main.loaded_files f WHERE {from_source});

UPDATE main.invocations SET repo = merged.repo
FROM (
    SELECT i.session_id, min(c.repo) AS repo
    FROM main.invocations i
    JOIN (SELECT repo, lower(trim(unnest(commit_shas))) AS sha FROM main.changes) c ON c.sha = lower(trim(i.commit_sha))
    WHERE i.session_id NOT IN (SELECT session_id FROM main.invocations WHERE repo IS NOT NULL)
    GROUP BY i.session_id
    HAVING count(DISTINCT c.repo) = 1
) AS merged
WHERE main.invocations.session_id = merged.session_id AND main.invocations.repo IS NULL
  AND main.invocations.file_id IN (SELECT file_id FROM main.loaded_files f WHERE {from_source});
"""

# {new_rows}: a filter on file_id, {stored}: the stored counts to add to (unmapped_sql)
UNMAPPED_SQL = """
CREATE OR REPLACE TABLE main.unmapped_identities AS
WITH used AS (
    SELECT 'token_usage' AS dataset, user_id AS identity, file_id FROM main.token_usage WHERE true{new_rows}
    UNION ALL SELECT 'invocations', user_id, file_id FROM main.invocations WHERE true{new_rows}
    UNION ALL SELECT 'changes', author_id, file_id FROM main.changes WHERE author_id IS NOT NULL{new_rows}
    UNION ALL SELECT 'reviews', reviewer_id, file_id FROM main.reviews WHERE true{new_rows}
    UNION ALL SELECT 'ai_commits', user_id, file_id FROM main.ai_commits WHERE user_id IS NOT NULL{new_rows}
),
counted AS (
    {stored}SELECT coalesce(f.source, 'contract') AS source, u.dataset, u.identity, count(*) AS rows
    FROM used u
    LEFT JOIN main.loaded_files f USING (file_id)
    WHERE u.identity NOT IN (SELECT user_id FROM main.people)
    GROUP BY ALL
)
SELECT source, dataset, identity, CAST(sum(rows) AS BIGINT) AS rows
FROM counted
GROUP BY ALL
ORDER BY source, dataset, identity
"""
