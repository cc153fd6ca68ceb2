"""Cursor AI Code Tracking API: per-commit AI line counts, as evidence for links (see docs/sources.md).

`GET https://api.cursor.com/analytics/ai-code/commits` returns pages `{"items": [...], "totalCount",
"page", "pageSize"}` of commits made in Cursor, each attributing its lines to TAB (accepted inline
completions), COMPOSER (accepted agent diffs) and non-AI; `GET .../commits.csv` streams the same
as CSV with snake_case columns (Cursor docs, "AI Code Tracking API":
https://cursor.com/docs/account/teams/ai-code-tracking-api). A JSON file may hold one page, pages
one after another (pretty-printed or not, or in an array) or one commit per line.

Mapping, one ai_commits row per commit: commit_sha (commitHash, lowercased), repo (repoName),
user_id (userEmail, else userId), committed_at (commitTs; NULL when not given: createdAt is when
Cursor ingested it), ai_lines_added (tabLinesAdded + composerLinesAdded), ai_lines_deleted
(tabLinesDeleted + composerLinesDeleted), lines_added (totalLinesAdded), lines_deleted
(totalLinesDeleted), tool 'cursor'. A line count that is not given makes its sum unknown (NULL);
one that is not a number is passed on for the loader to reject. Positions count commits (pages
unwrapped; CSV records after the header).

Rejected here: a commitHash that is not 7 to 64 hexadecimal digits (`not a commit hash`); an
object without commitHash (`not a Cursor AI commit record`, e.g. an error response); a page whose
`items` is not an array; malformed JSON, a malformed CSV record, what is not a JSON object.
"""
from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from pipeline.ingest import readers
from pipeline.ingest.sources import base


def read_cursor_ai_commits(path: Path) -> base.SourceRows:
    """ai_commits rows from one AI Code Tracking export, JSON (pages or commits) or CSV."""
    register = _register_csv if readers.strip_compression(path.name.lower()).endswith(".csv") else _register_json
    with base.connect() as con:
        unread = register(con, path)
        con.execute(COMMITS_SQL)
        rejects = pl.concat([unread, base.rejects_of(con, REJECTS_SQL, DATASET)]).sort("position", maintain_order=True)
        return base.SourceRows({DATASET: base.frame(con, AI_COMMITS_SQL)}, rejects)


# --- helpers ---------------------------------------------------------------------------


def _register_json(con: duckdb.DuckDBPyConnection, path: Path) -> pl.DataFrame:
    """Table `given` (position, raw, record_kind and the FIELDS as text) from a JSON export; its rejects."""
    damage = base.register_api_records(con, path, "records", "items", "commitHash")
    picked = ", ".join(f"json_text(record -> {readers.sql_literal('$.' + name)}) AS {column}" for name, column in FIELDS)
    con.execute(
        f"""
        CREATE TEMP TABLE given AS
        SELECT position, line AS raw, json_exists(record, '$.commitHash') AS is_commit, {picked}
        FROM records WHERE reason IS NULL
        """
    )
    return pl.concat([
        base.rejects_of(con, "SELECT position, line AS raw, reason FROM records WHERE reason IS NOT NULL", DATASET),
        base.damage_reject(con, DATASET, "SELECT max(position) FROM records", damage),
    ])


def _register_csv(con: duckdb.DuckDBPyConnection, path: Path) -> pl.DataFrame:
    """Table `given` from a `commits.csv` export (columns by their snake_case names); its rejects."""
    rows = readers.read_file(
        con, readers.InputFile(path, "csv", readers.compression_of(path) is not None),
        view_name="commits_csv", list_fields=frozenset(), json_fields=(), redact=frozenset(),
    )
    try:
        names = rows.columns if rows.relation is not None else {}
        picked = ", ".join(f"{readers.quote_ident(column) if column in names else 'NULL'}::VARCHAR AS {column}"
                           for _, column in FIELDS)
        source = rows.relation or "(SELECT NULL::BIGINT AS __position WHERE false)"
        con.execute(
            f"""
            CREATE TEMP TABLE given AS
            SELECT __position AS position, {rows.raw_sql if rows.relation else 'NULL'} AS raw,
                   {'true' if 'commit_hash' in names else 'false'} AS is_commit, {picked}
            FROM {source}
            """
        )
        rejects = pl.from_arrow(rows.rejects)
    finally:
        rows.release()
    return rejects.with_columns(dataset=pl.lit(DATASET)).select(list(base.REJECT_SCHEMA)).cast(base.REJECT_SCHEMA)


COMMITS_SQL = """
-- the sum of two line counts as text: NULL when either is not given; one that is not a number is
-- passed on as it is, for the loader to reject
CREATE OR REPLACE TEMP MACRO line_sum(a, b) AS CASE
    WHEN a IS NOT NULL AND TRY_CAST(a AS DOUBLE) IS NULL THEN a
    WHEN b IS NOT NULL AND TRY_CAST(b AS DOUBLE) IS NULL THEN b
    WHEN trunc(TRY_CAST(a AS DOUBLE) + TRY_CAST(b AS DOUBLE)) = TRY_CAST(a AS DOUBLE) + TRY_CAST(b AS DOUBLE)
        THEN CAST(CAST(TRY_CAST(a AS DOUBLE) + TRY_CAST(b AS DOUBLE) AS HUGEINT) AS VARCHAR)
    ELSE CAST(TRY_CAST(a AS DOUBLE) + TRY_CAST(b AS DOUBLE) AS VARCHAR) END;

CREATE OR REPLACE TEMP TABLE commits AS
SELECT *, lower(trim(commit_hash)) AS sha,
       CASE WHEN NOT is_commit THEN 'not a Cursor AI commit record'
            WHEN nullif(trim(commit_hash), '') IS NOT NULL AND NOT regexp_full_match(lower(trim(commit_hash)), '[0-9a-f]{7,64}')
                THEN 'not a commit hash' END AS reason
FROM given
"""

REJECTS_SQL = "SELECT position, raw, reason FROM commits WHERE reason IS NOT NULL ORDER BY position"

AI_COMMITS_SQL = """
SELECT position AS __position, raw AS __raw, nullif(sha, '') AS commit_sha, repo_name AS repo,
       coalesce(nullif(trim(user_email), ''), user_id) AS user_id, commit_ts AS committed_at,
       line_sum(tab_lines_added, composer_lines_added) AS ai_lines_added,
       line_sum(tab_lines_deleted, composer_lines_deleted) AS ai_lines_deleted,
       total_lines_added AS lines_added, total_lines_deleted AS lines_deleted, 'cursor' AS tool
FROM commits WHERE reason IS NULL ORDER BY position
"""

# settings
DATASET = "ai_commits"
FIELDS = (  # (JSON field, CSV column): what is read of a commit
    ("commitHash", "commit_hash"), ("userId", "user_id"), ("userEmail", "user_email"), ("repoName", "repo_name"),
    ("totalLinesAdded", "total_lines_added"), ("totalLinesDeleted", "total_lines_deleted"),
    ("tabLinesAdded", "tab_lines_added"), ("tabLinesDeleted", "tab_lines_deleted"),
    ("composerLinesAdded", "composer_lines_added"), ("composerLinesDeleted", "composer_lines_deleted"),
    ("commitTs", "commit_ts"),
)
