"""Changes from `git log`, written with this exact format (see docs/sources.md):

    git log --first-parent --diff-merges=first-parent --numstat \\
        --format='%x1e%H%x1f%P%x1f%an%x1f%ae%x1f%cI%x1f%s%x1f%b%x1f'

Each commit is one record: a 0x1E byte, then commit hash, parent hashes, author name, author
email, committer date (ISO-8601; when the commit landed on the branch), subject and body,
separated by 0x1F bytes, then the `--numstat` lines (`added<TAB>deleted<TAB>path`; `-` for a
binary file). Add `--merges` for a merge-commit workflow; leave it out when pull requests are
squashed or rebased (then each commit on the branch is a change).

The repository is the file's folder under `git_log/` (`git_log/shop/checkout/main.txt` is
`shop/checkout`), or the file name without extension for a file directly in `git_log/`
(`git_log/checkout.txt` is `checkout`).

Mapping: one change per commit: change_id `<repo>@<hash>`, repo, author_id (author email),
merged_at (committer date), lines_added / lines_deleted (numstat sums; with
--diff-merges=first-parent a merge counts what it brought to the branch), ai_session_ids
(`AI-Session:` trailers of the message, comma or blank separated), commit_shas (the commit and,
for a merge, its other parents: the merged branch heads, so a commit an assistant made and that
was merged links its session), commit_shas_scope (`heads` for a merge: the branch's earlier
commits are not in a first-parent log; `all` for a commit that is the whole change), ai_coauthors (`Co-authored-by:` trailers naming an AI assistant,
e.g. `Claude <noreply@anthropic.com>`). A record that does not have the format's eight fields, or
whose hash is not a commit hash, is rejected.
"""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa

from pipeline.ingest import readers
from pipeline.ingest.sources import base


def read_git_log(path: Path) -> base.SourceRows:
    """changes rows from one `git log` file of the documented format."""
    data, damage = readers.read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise base.UnreadableSourceError("invalid UTF-8") from None
    with base.connect() as con:
        con.register("git_log_text", pa.table({"text": [text], "repo": [repo_of(path)]}))
        con.execute(RECORDS_SQL)
        rejects = pl.concat([
            base.rejects_of(con, REJECTS_SQL, "changes"),
            base.damage_reject(con, "changes", "SELECT max(position) FROM commits", damage),
        ])
        return base.SourceRows({"changes": base.frame(con, _changes_sql())}, rejects)


def repo_of(path: Path) -> str:
    """The repository a git log file is about: its folder below `git_log/`, else its own name."""
    parts = path.parts
    below = parts[len(parts) - parts[::-1].index(SOURCE_FOLDER):] if SOURCE_FOLDER in parts else (path.name,)
    if len(below) > 1:
        return "/".join(below[:-1])
    return below[0].split(".")[0]


# --- helpers ---------------------------------------------------------------------------

# one row per record; the text before the first separator (normally empty) is a record too
RECORDS_SQL = """
CREATE OR REPLACE TEMP TABLE commits AS
WITH chunks AS (
    SELECT repo, unnest(enumerate_list(string_split(text, chr(30)))) AS e FROM git_log_text
),
numbered AS (
    SELECT repo, e.i AS i, e.v AS record FROM chunks
    WHERE NOT (e.i = 1 AND trim(e.v, chr(32) || chr(9) || chr(13) || chr(10)) = '')
)
SELECT row_number() OVER (ORDER BY i) AS position, repo, record, string_split(record, chr(31)) AS f
FROM numbered;
"""

REJECTS_SQL = """
SELECT position, record AS raw,
       CASE WHEN len(f) <> 8 THEN 'not a record of the documented git log --format' ELSE 'not a commit hash' END AS reason
FROM commits
WHERE len(f) <> 8 OR NOT regexp_full_match(trim(f[1]), '[0-9a-fA-F]{40}|[0-9a-fA-F]{64}')
ORDER BY position
"""


def _changes_sql() -> str:
    ai = readers.sql_literal(AI_COAUTHOR_PATTERN)
    return f"""
    WITH ok AS (
        SELECT position, repo, record, lower(trim(f[1])) AS sha,
               list_filter(string_split(trim(f[2]), ' '), lambda x: x <> '') AS parents,
               trim(f[4]) AS email, trim(f[5]) AS committed, f[6] AS subject, f[7] AS body, f[8] AS stat
        FROM commits
        WHERE len(f) = 8 AND regexp_full_match(trim(f[1]), '[0-9a-fA-F]{{40}}|[0-9a-fA-F]{{64}}')
    ),
    counted AS (
        SELECT *,
               regexp_extract_all(stat, '(?m)^([0-9]+)\\t[0-9]+\\t', 1) AS added,
               regexp_extract_all(stat, '(?m)^[0-9]+\\t([0-9]+)\\t', 1) AS deleted
        FROM ok
    )
    SELECT position AS __position, record AS __raw,
           repo || '@' || sha AS change_id, repo, nullif(email, '') AS author_id, committed AS merged_at,
           CAST(list_sum(list_transform(added, lambda x: CAST(x AS BIGINT))) AS VARCHAR) AS lines_added,
           CAST(list_sum(list_transform(deleted, lambda x: CAST(x AS BIGINT))) AS VARCHAR) AS lines_deleted,
           trailer_values(subject || chr(10) || body, {readers.sql_literal(SESSION_TRAILER)}) AS ai_session_ids,
           list_prepend(sha, list_transform(parents[2:], lambda x: lower(x))) AS commit_shas,
           CASE WHEN len(parents) > 1 THEN 'heads' ELSE 'all' END AS commit_shas_scope,
           list_filter(trailer_lines(body, 'Co-authored-by'), lambda x: regexp_matches(x, {ai})) AS ai_coauthors
    FROM counted
    ORDER BY position
    """


# settings
SOURCE_FOLDER = "git_log"
SESSION_TRAILER = "AI-Session"
# Co-authored-by trailers that name an AI assistant (name or email), case-insensitive
AI_COAUTHOR_PATTERN = (
    r"(?i)noreply@anthropic\.com|\bclaude\b|copilot|cursoragent@cursor\.com|\bcursor agent\b|\bcodex\b"
    r"|devin-ai-integration|\baider\b|\bgemini\b|\bamazon q\b|\bkiro\b"
)
