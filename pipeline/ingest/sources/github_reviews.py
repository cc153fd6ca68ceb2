"""GitHub pull request reviews, as the REST API returns them (see docs/sources.md).

`GET /repos/OWNER/REPO/pulls/NUMBER/reviews`, one call per pull request. A file may hold one JSON
array, several arrays one after the other (`gh api --paginate`, and a loop over pull requests
appending to one file), an array of arrays (`--slurp`) or one object per line (`--jq '.[]'`);
positions count the objects.

Mapping, one reviews row per submitted review:
    review_id `OWNER/REPO#NUMBER/reviews/<id>`; change_id `OWNER/REPO#NUMBER`, exactly as
    github_pulls names the pull request (OWNER/REPO and NUMBER from `pull_request_url`
    `.../repos/OWNER/REPO/pulls/NUMBER`, else from `html_url` `.../OWNER/REPO/pull/NUMBER#...`);
    reviewer_id (user.login); submitted_at; state (APPROVED -> approved, CHANGES_REQUESTED ->
    changes_requested, COMMENTED -> commented, DISMISSED -> commented: see below); ai_session_ids
    (`AI-Session:` trailer lines of the body, as for pull requests); comments NULL (the review
    object does not count its comments: unknown, not zero).

DISMISSED: GitHub dismisses only approvals and change requests, and the dismissed review keeps no
trace of which it was. The reviewer did the review (and the AI sessions its body names did the
work), so the review is kept for reviewer credit, as `commented`: a review given whose verdict no
longer stands, neither an approval nor a request for changes.

Rejected here: a PENDING review (a draft its author has not submitted: no submitted_at, visible
only to its author) `pending review (not submitted)`; an object without `state` or without a pull
request URL `not a pull request review`; what is not a JSON object. Other bad values (no user, an
unknown state) are left to the loader's own reasons.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.ingest import readers
from pipeline.ingest.sources import base, git_log


def read_github_reviews(path: Path) -> base.SourceRows:
    """reviews rows from one file of GitHub pull request review objects."""
    with base.connect() as con:
        damage = base.register_json_records(con, path, "records")
        con.execute(_reviews_sql())
        rejects = pl.concat([
            base.rejects_of(con, REJECTS_SQL, DATASET),
            base.damage_reject(con, DATASET, "SELECT max(position) FROM records", damage),
        ])
        rows = base.frame(
            con,
            "SELECT __position, __raw, review_id, change_id, reviewer_id, submitted_at, state, ai_session_ids, comments "
            "FROM reviews_read WHERE reason IS NULL ORDER BY __position",
        )
        return base.SourceRows({DATASET: rows}, rejects)


# --- helpers ---------------------------------------------------------------------------

def _reviews_sql() -> str:
    session = readers.sql_literal(git_log.SESSION_TRAILER)
    return f"""
    CREATE OR REPLACE TEMP TABLE reviews_read AS
    WITH given AS (
        SELECT position, record, line, reason,
               json_text(record -> '$.id') AS id,
               upper(trim(record ->> '$.state')) AS given_state,
               record ->> '$.user.login' AS reviewer,
               record ->> '$.submitted_at' AS submitted_at,
               record ->> '$.body' AS body,
               regexp_extract(record ->> '$.pull_request_url', {PULL_URL_PATTERN}, ['repo', 'number']) AS api_pull,
               regexp_extract(record ->> '$.html_url', {HTML_URL_PATTERN}, ['repo', 'number']) AS web_pull,
               record ->> '$.pull_request_url' AS pull_request_url
        FROM records
    ),
    shaped AS (
        SELECT *, coalesce(nullif(api_pull.repo, '') || '#' || nullif(api_pull.number, ''),
                           nullif(web_pull.repo, '') || '#' || nullif(web_pull.number, '')) AS change_id
        FROM given
    )
    SELECT position AS __position,
           CAST(json_object('id', id, 'pull_request_url', pull_request_url, 'user', reviewer, 'state', given_state,
                            'submitted_at', submitted_at, 'body', body) AS VARCHAR) AS __raw,
           change_id || '/reviews/' || id AS review_id, change_id, reviewer AS reviewer_id, submitted_at,
           CASE WHEN given_state = 'DISMISSED' THEN 'commented' ELSE lower(given_state) END AS state,
           trailer_values(body, {session}) AS ai_session_ids,
           NULL::VARCHAR AS comments,
           CASE WHEN reason IS NOT NULL THEN reason
                WHEN given_state IS NULL OR change_id IS NULL THEN 'not a pull request review'
                WHEN given_state = 'PENDING' THEN 'pending review (not submitted)' END AS reason,
           line
    FROM shaped
    """


REJECTS_SQL = """
SELECT __position AS position, CASE WHEN reason LIKE 'pending%' THEN __raw ELSE line END AS raw, reason
FROM reviews_read WHERE reason IS NOT NULL ORDER BY position
"""

# settings
DATASET = "reviews"
# OWNER/REPO and NUMBER of the reviewed pull request, from the API URL (github.com or Enterprise
# Server's /api/v3) or from the review's web URL (`.../pull/NUMBER#pullrequestreview-ID`)
PULL_URL_PATTERN = readers.sql_literal(r"/repos/([^/]+/[^/]+)/pulls/([0-9]+)/?$")
HTML_URL_PATTERN = readers.sql_literal(r"^https?://[^/]+/([^/]+/[^/]+)/pull/([0-9]+)(?:[/#?].*)?$")
