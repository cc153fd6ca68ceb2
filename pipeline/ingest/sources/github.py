"""GitHub pull requests and deployments, as the REST API returns them (see docs/sources.md).

A file may hold one JSON array, several arrays one after the other (`gh api --paginate`), an array
of arrays (`--slurp`) or one object per line (`--jq '.[]'`); positions count the objects.

Pull requests (`github_pulls`, `GET /repos/OWNER/REPO/pulls?state=closed`) -> changes:
    change_id `<base.repo.full_name>#<number>`, repo (base.repo.full_name), author_id (user.login),
    merged_at, lines_added / lines_deleted (additions / deletions: only the single-PR endpoint
    returns them; NULL otherwise), ai_session_ids (`AI-Session:` trailers of the body),
    commit_shas and commit_shas_scope: with the pull request's commits embedded as `commits` (`GET
    .../pulls/N/commits`, each with `sha`; or `gh pr list --json commits`, each with `oid`), the
    merge_commit_sha when merged and every commit of the pull request, scope `all`; without them,
    merge_commit_sha and head.sha when merged (head.sha otherwise), scope `heads` (the branch's
    earlier commits are not known). ai_coauthors (`Co-authored-by:` lines of the body naming an AI
    assistant). An object without `number` and `base` is rejected as not a pull request.

Deployments (`github_deployments`) -> deployments, from either
    a GitHub deployment (`GET /repos/OWNER/REPO/deployments`) with its statuses
        (`GET .../deployments/ID/statuses`) embedded as `statuses`: deployment_id
        `<repo>/deployments/<id>`, repo (from repository_url), commit_shas [sha]. Production only:
        `production_environment` when given, else `environment` (absent: GitHub's default
        `production`) in `environments`, case-insensitive; others are rejected `not a production
        environment: ENV`. Status and deployed_at from the statuses in order (created_at, then
        id): the last one that is not `inactive` decides: success -> success at its time (a later
        `inactive` only says a newer deployment superseded it); failure or error -> failure at its
        time, or rolled_back at the last success's time when a success came before; queued,
        pending or in_progress -> rejected as unfinished, so a later export loads it; only
        `inactive` statuses -> rejected `no outcome: only inactive statuses` (GitHub marks old
        deployments inactive whatever they did); no status at all -> rejected;
    or a Four Keys `deployments` row (deploy_id, time_created, main_commit, changes: the commit
        SHAs it shipped; repo from a `repo` field or the file's folder): status success,
        commit_shas main_commit + changes.
    The loader then gives each deployment the changes its commits identify (pipeline.ingest.reconcile).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from pipeline.ingest import readers
from pipeline.ingest.sources import base, git_log


def read_github_pulls(path: Path) -> base.SourceRows:
    """changes rows from one file of GitHub pull request objects."""
    with base.connect() as con:
        damage = base.register_json_records(con, path, "records")
        rejects = pl.concat([
            base.rejects_of(con, PULL_REJECTS_SQL, "changes"),
            base.damage_reject(con, "changes", "SELECT max(position) FROM records", damage),
        ])
        return base.SourceRows({"changes": base.frame(con, _pulls_sql())}, rejects)


def read_github_deployments(path: Path, environments: Sequence[str] | None = None) -> base.SourceRows:
    """deployments rows from one file of GitHub deployments (statuses embedded) or Four Keys rows;
    `environments`: the environment names that count as production when a deployment has no
    `production_environment` (the `[sources.github_deployments] environments` setting; None:
    PRODUCTION_ENVIRONMENTS)."""
    names = PRODUCTION_ENVIRONMENTS if environments is None else tuple(environments)
    with base.connect() as con:
        damage = base.register_json_records(con, path, "records")
        con.execute(_deployments_sql(repo_from_path(path), names))
        rejects = pl.concat([
            base.rejects_of(con, DEPLOYMENT_REJECTS_SQL, "deployments"),
            base.damage_reject(con, "deployments", "SELECT max(position) FROM records", damage),
        ])
        rows = base.frame(
            con,
            "SELECT __position, __raw, deployment_id, repo, deployed_at, status, commit_shas "
            "FROM deployments_read WHERE reason IS NULL ORDER BY __position",
        )
        return base.SourceRows({"deployments": rows}, rejects)


def repo_from_path(path: Path) -> str | None:
    """OWNER/REPO from a file two folders below `github_deployments/` (a fallback for Four Keys rows)."""
    parts = path.parts
    if DEPLOYMENTS_FOLDER not in parts:
        return None
    below = parts[len(parts) - parts[::-1].index(DEPLOYMENTS_FOLDER):]
    return "/".join(below[:-1]) if len(below) > 1 else None


# --- helpers ---------------------------------------------------------------------------

PULL_REJECTS_SQL = """
SELECT position, line AS raw, coalesce(reason, 'not a pull request') AS reason
FROM records
WHERE reason IS NOT NULL OR NOT (json_exists(record, '$.number') AND json_exists(record, '$.base'))
ORDER BY position
"""


def _pulls_sql() -> str:
    ai = readers.sql_literal(git_log.AI_COAUTHOR_PATTERN)
    session = readers.sql_literal(git_log.SESSION_TRAILER)
    return f"""
    WITH pulls AS (
        SELECT position, record,
               record ->> '$.number' AS number,
               record ->> '$.base.repo.full_name' AS repo,
               record ->> '$.user.login' AS author,
               record ->> '$.merged_at' AS merged_at,
               lower(record ->> '$.merge_commit_sha') AS merge_sha,
               lower(record ->> '$.head.sha') AS head_sha,
               CASE WHEN json_type(record, '$.commits') = 'ARRAY' THEN list_transform(
                   json_extract(record, '$.commits[*]'), lambda c: lower(coalesce(c ->> 'sha', c ->> 'oid'))) END AS commits,
               json_text(record -> '$.additions') AS additions,
               json_text(record -> '$.deletions') AS deletions,
               coalesce(record ->> '$.title', '') || chr(10) || coalesce(record ->> '$.body', '') AS text
        FROM records
        WHERE reason IS NULL AND json_exists(record, '$.number') AND json_exists(record, '$.base')
    )
    SELECT position AS __position,
           CAST(json_object('number', number, 'repo', repo, 'user', author, 'merged_at', merged_at,
                            'merge_commit_sha', merge_sha, 'head_sha', head_sha, 'commits', commits, 'additions', additions,
                            'deletions', deletions, 'body', text) AS VARCHAR) AS __raw,
           repo || '#' || number AS change_id, repo, author AS author_id, merged_at,
           additions AS lines_added, deletions AS lines_deleted,
           trailer_values(text, {session}) AS ai_session_ids,
           list_filter(CASE WHEN merged_at IS NOT NULL THEN [merge_sha] ELSE [] END || coalesce(commits, [head_sha]),
                       lambda x: x IS NOT NULL) AS commit_shas,
           CASE WHEN commits IS NULL THEN 'heads' ELSE 'all' END AS commit_shas_scope,
           list_filter(trailer_lines(text, 'Co-authored-by'), lambda x: regexp_matches(x, {ai})) AS ai_coauthors
    FROM pulls
    ORDER BY position
    """


def _deployments_sql(path_repo: str | None, environments: Sequence[str]) -> str:
    fallback = readers.sql_literal(path_repo) if path_repo else "NULL"
    production = "[" + ", ".join(readers.sql_literal(name.strip().lower()) for name in environments) + "]::VARCHAR[]"
    return f"""
    CREATE OR REPLACE TEMP TABLE deployments_read AS
    WITH kinds AS (
        SELECT position, record, line, reason,
               CASE WHEN reason IS NOT NULL THEN NULL
                    WHEN json_exists(record, '$.sha') AND json_exists(record, '$.id') THEN 'github'
                    WHEN json_exists(record, '$.deploy_id') THEN 'four_keys' END AS kind
        FROM records
    ),
    status_list AS (  -- every status of a GitHub deployment; n counts from the first listed (the newest)
        SELECT position, e.i AS n, lower(e.v ->> '$.state') AS state, e.v ->> '$.created_at' AS status_at,
               try_cast(e.v ->> '$.id' AS BIGINT) AS status_id
        FROM (SELECT position, unnest(enumerate_list(CAST(json_extract(record, '$.statuses[*]') AS JSON[]))) AS e
              FROM kinds WHERE kind = 'github')
    ),
    ordered AS (  -- history order: created_at, then id, then the API's order (newest first)
        SELECT position, state, status_at,
               row_number() OVER (PARTITION BY position ORDER BY try_cast(status_at AS TIMESTAMPTZ) NULLS FIRST,
                                  status_at NULLS FIRST, status_id NULLS FIRST, n DESC) AS seq
        FROM status_list WHERE state IS NOT NULL
    ),
    outcomes AS (  -- the last status that is not 'inactive', and the last success
        SELECT position,
               arg_max(state, seq) FILTER (WHERE state <> 'inactive') AS state,
               arg_max(status_at, seq) FILTER (WHERE state <> 'inactive') AS status_at,
               arg_max(status_at, seq) FILTER (WHERE state = 'success') AS success_at
        FROM ordered GROUP BY position
    ),
    github AS (
        SELECT k.position, k.line,
               regexp_extract(k.record ->> '$.repository_url', '/repos/([^/]+/[^/]+)$', 1) AS repo_found,
               k.record ->> '$.id' AS id, lower(k.record ->> '$.sha') AS sha,
               coalesce(k.record ->> '$.environment', 'production') AS environment,
               CASE WHEN json_type(k.record -> '$.production_environment') = 'BOOLEAN'
                    THEN (k.record ->> '$.production_environment') = 'true'
                    ELSE list_contains({production}, lower(trim(coalesce(k.record ->> '$.environment', 'production'))))
               END AS is_production,
               o.position IS NOT NULL AS has_status, o.state, o.status_at, o.success_at
        FROM kinds k LEFT JOIN outcomes o USING (position)
        WHERE k.kind = 'github'
    ),
    four_keys AS (
        SELECT position, line, coalesce(record ->> '$.repo', record ->> '$.repository', {fallback}) AS repo,
               record ->> '$.deploy_id' AS id, record ->> '$.time_created' AS status_at,
               list_filter(list_prepend(lower(record ->> '$.main_commit'),
                   list_transform(CASE WHEN json_type(record -> '$.changes') = 'ARRAY'
                                       THEN json_extract(record, '$.changes[*]') ELSE [] END,
                                  lambda x: lower(json_text(x)))),
                   lambda x: x IS NOT NULL AND x <> '') AS commits_given
        FROM kinds WHERE kind = 'four_keys'
    )
    SELECT position AS __position, line AS __raw,
           coalesce(coalesce(nullif(repo_found, ''), {fallback}) || '/', '') || 'deployments/' || id AS deployment_id,
           coalesce(nullif(repo_found, ''), {fallback}) AS repo,
           CASE WHEN state IN ('failure', 'error') AND success_at IS NOT NULL THEN success_at ELSE status_at END AS deployed_at,
           CASE WHEN state = 'success' THEN 'success'
                WHEN state IN ('failure', 'error') THEN CASE WHEN success_at IS NULL THEN 'failure' ELSE 'rolled_back' END
           END AS status,
           list_filter([sha], lambda x: x IS NOT NULL) AS commit_shas,
           CASE WHEN NOT is_production THEN 'not a production environment: ' || left(environment, 40)
                WHEN NOT has_status THEN 'no deployment status'
                WHEN state IS NULL THEN 'no outcome: only inactive statuses'
                WHEN state NOT IN ('success', 'failure', 'error') THEN 'unfinished deployment: ' || left(state, 40) END AS reason
    FROM github
    UNION ALL
    SELECT position, line, coalesce(repo || '/', '') || 'deployments/' || id, repo, status_at,
           'success', list_sort(list_distinct(commits_given)), NULL
    FROM four_keys
    UNION ALL
    SELECT position, line, NULL, NULL, NULL, NULL, NULL, coalesce(reason, 'not a deployment')
    FROM kinds WHERE kind IS NULL
    """


DEPLOYMENT_REJECTS_SQL = """
SELECT __position AS position, __raw AS raw, reason FROM deployments_read WHERE reason IS NOT NULL ORDER BY position
"""

# settings
DEPLOYMENTS_FOLDER = "github_deployments"
PRODUCTION_ENVIRONMENTS = ("production", "prod", "live")  # environment names of a release (default of the setting)
