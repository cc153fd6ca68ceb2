"""A generated world written as the vendors export it: the `sources/` folder of docs/sources.md.

`export_vendor_world(contract_dir, out_dir)` takes a world in contract form (what `goodhart
generate --style agentic --format parquet OUT` writes) and writes the same world to `out_dir` as
vendor exports, laid out as docs/sources.md says ("A whole world as vendor exports"):

    people.csv                          the people, with every identity the sources use as aliases
    sources/claude_code_otel/           OTLP/JSON lines: prompts, tool results, direct model calls, metrics
    sources/litellm/                    LiteLLM_SpendLogs CSV: the model calls of gateway sessions
    sources/github_pulls/               one pull request a line (single-PR endpoint), per repository
    sources/github_deployments/         one deployment a line, statuses embedded, per repository
    sources/github_reviews/             review arrays (one API call per pull request), per repository
    labels/                             the world's labels (world ids; vendor_ids/ maps them)
    vendor_ids/                         world id -> vendor id per dataset, and each person's identities

Routing: a session of a tool whose model mix includes models Anthropic does not serve (codex,
copilot, cursor: GATEWAY_TOOLS) runs Claude Code through the company's LiteLLM gateway, so its
model calls are the gateway's spend log rows and its OpenTelemetry export holds no api_request
events (loading both would count each call twice); other sessions talk to Anthropic directly.
Prompts, tool results and lines of code of every session come from Claude Code's telemetry.
People are signed in (`user.account_id`, `user.email`) except `anonymous_users` of them, known only
by their install's `user.id`; GitHub knows them by login, the gateway by email.

With `faults`, the folder also holds what real deliveries hold, each listed in `expected_rejects`:
a copy of the live Collector file taken mid-write (its records repeat the rotated file's:
`duplicate`; its cut last line: `malformed JSON`), a day's spend log exported during the day and
again after it (the partial file repeats rows: `duplicate`), failed gateway calls (`failed call (status
failure)`), a staging deployment (`not a production environment: staging`), a 404 body the
reviews loop wrote (`not a pull request review`), and byte-identical copies under other names
(skipped by their content hash: neither loaded nor rejected).
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from data import vendor_telemetry
from data.vendor_telemetry import MACROS as TELEMETRY_MACROS


@dataclass(frozen=True)
class VendorExport:
    """What `export_vendor_world` wrote: the files per source, the id maps, the expected rejects."""

    out_dir: Path
    files: dict[str, list[Path]]  # source -> files written (copies included)
    ids: dict[str, pl.DataFrame]  # dataset -> (world id, vendor_id); people -> user_id and identities
    expected_rejects: pl.DataFrame  # dataset, reason, rows: what loading the folder rejects


def export_vendor_world(contract_dir: Path, out_dir: Path, *, faults: bool = True, failed_calls: int = 3,
                        anonymous_users: int = 1) -> VendorExport:
    """Write the world in `contract_dir` (parquet contract files) to `out_dir` as vendor exports."""
    contract_dir, out_dir = Path(contract_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("sources", "labels", "vendor_ids"):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    sources = out_dir / "sources"
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(MACROS + TELEMETRY_MACROS)
        _register_world(con, contract_dir)
        con.execute(IDS_SQL.format(anonymous=int(anonymous_users), gateway=_sql_list(GATEWAY_TOOLS)))
        con.execute(PULLS_SQL)
        con.execute(DEPLOYMENTS_SQL)
        expected: list[tuple[str, str, int]] = []
        files = {
            "claude_code_otel": _claude_code(con, sources / "claude_code_otel", faults, expected),
            "litellm": _litellm(con, sources / "litellm", faults, failed_calls, expected),
            "github_pulls": _per_repo(con.sql(PULL_LINES_SQL).pl(), sources / "github_pulls", ".jsonl"),
            "github_deployments": _per_repo(con.sql(DEPLOYMENT_LINES_SQL.replace("{staging}", str(faults).lower())).pl(),
                                            sources / "github_deployments", ".jsonl"),
            "github_reviews": _per_repo(con.sql(REVIEW_LINES_SQL).pl(), sources / "github_reviews", ".json"),
        }
        if faults:
            _github_faults(files, expected)
        ids = {name: con.sql(sql).pl() for name, sql in ID_MAPS.items()}
        people = con.sql(PEOPLE_CSV_SQL).pl()
    people.write_csv(out_dir / "people.csv")
    (out_dir / "vendor_ids").mkdir()
    for name, frame in ids.items():
        frame.write_parquet(out_dir / "vendor_ids" / f"{name}.parquet")
    if (contract_dir / "labels").is_dir():
        shutil.copytree(contract_dir / "labels", out_dir / "labels")
    rejects = pl.DataFrame(expected, schema={"dataset": pl.String, "reason": pl.String, "rows": pl.Int64}, orient="row")
    rejects = rejects.group_by("dataset", "reason").agg(pl.col("rows").sum()).filter(pl.col("rows") > 0)
    return VendorExport(out_dir, files, ids, rejects.sort("dataset", "reason"))


# --- steps ---------------------------------------------------------------------------------


def _register_world(con: duckdb.DuckDBPyConnection, contract_dir: Path) -> None:
    """The world's contract files as views world_<dataset>, people as world_people."""
    for dataset in ("token_usage", "invocations"):
        files = sorted((contract_dir / dataset).glob("*.parquet"))
        if not files:
            raise ValueError(f"{contract_dir / dataset} holds no parquet files: export a world written with --format parquet")
        con.execute(f"CREATE VIEW world_{dataset} AS SELECT * FROM read_parquet({_sql_list(map(str, files))})")
    for dataset in ("changes", "deployments", "reviews"):
        con.execute(f"CREATE VIEW world_{dataset} AS SELECT * FROM read_parquet({_sql_text(contract_dir / dataset)} || '.parquet')")
    con.execute(f"CREATE VIEW world_people AS SELECT * FROM read_csv({_sql_text(contract_dir / 'people.csv')})")


def _claude_code(con: duckdb.DuckDBPyConnection, folder: Path, faults: bool,
                 expected: list[tuple[str, str, int]]) -> list[Path]:
    """The Collector's daily files; with faults, a copy of the last day's file taken mid-write."""
    lines = vendor_telemetry.claude_code_lines(con)
    written = vendor_telemetry.write_claude_code(lines, folder)
    if faults and lines.height:
        last = lines.filter(pl.col("file_day") == pl.col("file_day").max()).sort("line_ts", "sig")
        copied = last.head(last.height // 2)
        cut = last["line"][copied.height]
        live = folder / "claude-code.jsonl"  # sorts after the rotated files: its records are the repeats
        live.write_text("".join(line + "\n" for line in copied["line"]) + cut[: len(cut) // 2])
        written.append(live)
        expected += [("token_usage", "duplicate", int(copied["api_requests"].sum())),
                     ("invocations", "duplicate", int(copied["user_prompts"].sum())),
                     ("token_usage", "malformed JSON", 1)]
    return written


def _litellm(con: duckdb.DuckDBPyConnection, folder: Path, faults: bool, failed_calls: int,
             expected: list[tuple[str, str, int]]) -> list[Path]:
    """One spend log CSV per day; with faults, failed calls, the busiest day also exported during
    the day, and the first day's file saved twice."""
    rows = vendor_telemetry.spend_rows(con, failed_calls if faults else 0)
    written = [vendor_telemetry.write_spend(part, folder / f"spend-{day:%Y-%m-%d}.csv")
               for (day,), part in rows.group_by("file_day", maintain_order=True)]
    failed = pl.col("status") != "success"
    expected.append(("token_usage", FAILED_CALL, rows.filter(failed).height))
    if faults and rows.height:
        # the busiest day was first exported during the day, at the minute its middle call began
        day = rows["file_day"].mode().sort()[-1]
        calls = rows.filter(pl.col("file_day") == day)
        cut = calls["ts"].sort()[calls.height // 2].replace(second=0, microsecond=0)
        partial = calls.filter(pl.col("ts") < cut)
        written.append(vendor_telemetry.write_spend(partial, folder / f"spend-{day:%Y-%m-%d}T{cut:%H%M}.csv"))
        expected += [("token_usage", "duplicate", partial.filter(~failed).height),
                     ("token_usage", FAILED_CALL, partial.filter(failed).height)]
        written.append(_copy_as(written[0]))
    return written


def _per_repo(lines: pl.DataFrame, folder: Path, suffix: str) -> list[Path]:
    """One file per repository (`OWNER-REPO<suffix>`), its lines in order."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for (repo,), part in lines.group_by("repo", maintain_order=True):
        path = folder / (repo.replace("/", "-") + suffix)
        path.write_text("\n".join(part["line"]) + "\n")
        written.append(path)
    return written


def _github_faults(files: dict[str, list[Path]], expected: list[tuple[str, str, int]]) -> None:
    """A pull request file saved twice; a 404 body in a reviews file; the staging deployment's reject."""
    files["github_pulls"].append(_copy_as(files["github_pulls"][0]))
    reviews = files["github_reviews"][0]
    with reviews.open("a") as out:
        out.write(NOT_FOUND + "\n")
    expected += [("deployments", "not a production environment: staging", 1),
                 ("reviews", "not a pull request review", 1)]


def _copy_as(path: Path) -> Path:
    """The file saved a second time, as a browser names a repeated download."""
    copy = path.with_name(f"{path.name.split('.')[0]} (1){''.join(path.suffixes)}")
    shutil.copyfile(path, copy)
    return copy


def _sql_text(value: object) -> str:
    """A DuckDB string literal of the value."""
    return "'" + str(value).replace("'", "''") + "'"


def _sql_list(values: Iterable[object]) -> str:
    """A DuckDB list literal of the values as strings."""
    return "[" + ", ".join(map(_sql_text, values)) + "]"


# --- SQL ---------------------------------------------------------------------------------

# identities, sessions, prompts and models: the ids every export shares
IDS_SQL = """
CREATE TEMP TABLE people_ids AS
SELECT user_id, team, org,
       'user_01' || upper(left(md5('account:' || user_id), 24)) AS account_id,
       lower(user_id) || '@corp.example' AS email,
       lower(user_id) || '-' || lower(team) AS login,
       10000 + row_number() OVER (ORDER BY user_id) AS github_id,
       CASE WHEN row_number() OVER (ORDER BY user_id DESC) <= {anonymous} THEN sha256('install:' || user_id) END AS install_id
FROM world_people;

CREATE TEMP TABLE user_attributes AS
SELECT user_id,
       CASE WHEN install_id IS NOT NULL THEN [kv('user.id', install_id)]
            ELSE [kv('user.account_id', account_id), kv('user.email', email),
                  kv('organization.id', uuid_of('organization'))] END AS attributes
FROM people_ids;

CREATE TEMP TABLE session_ids AS
WITH activity AS (
    SELECT session_id, user_id, ts, tool, NULL::VARCHAR AS repo, false AS prompt FROM world_token_usage
    UNION ALL
    SELECT session_id, user_id, ts, NULL, repo, true FROM world_invocations
)
SELECT session_id, any_value(user_id) AS user_id, uuid_of('session:' || session_id) AS vendor_id,
       coalesce(bool_or(list_contains({gateway}, tool)), false) AS gateway,
       min(ts) AS first_ts, CAST(min(ts) AS DATE) AS file_day, any_value(repo) AS repo, bool_or(prompt) AS has_prompts
FROM activity GROUP BY session_id;

CREATE TEMP TABLE invocation_ids AS
SELECT invocation_id, uuid_of('prompt:' || invocation_id) AS vendor_id FROM world_invocations;

CREATE TEMP TABLE models AS
SELECT * FROM (VALUES ('sonnet-4.5', 'claude-sonnet-4-5'), ('haiku-4.5', 'claude-haiku-4-5'),
                      ('opus-4.5', 'claude-opus-4-5'), ('sonnet-5-preview', 'claude-sonnet-5-preview'))
    t(model, vendor_model);
"""

# one pull request per change, numbered per repository in the world's (time) order
PULLS_SQL = """
CREATE TEMP TABLE pulls AS
WITH first_review AS (SELECT change_id, min(submitted_at) AS at FROM world_reviews GROUP BY change_id),
numbered AS (
    SELECT c.*, row_number() OVER (PARTITION BY c.repo ORDER BY c.change_id) AS number,
           row_number() OVER (ORDER BY c.change_id) AS idx, dense_rank() OVER (ORDER BY c.repo) AS repo_idx,
           coalesce(least(c.merged_at, r.at), (SELECT max(ts) FROM world_invocations)) - INTERVAL 2 HOUR AS created_at
    FROM world_changes c LEFT JOIN first_review r USING (change_id)
)
SELECT n.*, n.repo || '#' || n.number AS vendor_id, p.login, p.github_id,
       left(sha256('merge:' || n.change_id), 40) AS merge_sha,
       coalesce(n.commit_shas[-1], left(sha256('head:' || n.change_id), 40)) AS head_sha
FROM numbered n JOIN people_ids p ON p.user_id = n.author_id
"""

PULL_LINES_SQL = """
SELECT repo, CAST(to_json({
    'url': api_url(repo) || '/pulls/' || number, 'id': 2000000000 + idx,
    'node_id': 'PR_kwDO' || upper(left(md5('pr:' || change_id), 12)),
    'html_url': 'https://github.com/' || repo || '/pull/' || number, 'number': number,
    'state': CASE WHEN merged_at IS NULL THEN 'open' ELSE 'closed' END, 'locked': false, 'title': 'Change ' || number,
    'user': {'login': login, 'id': github_id, 'type': 'User'},
    'body': session_body('Change ' || number || '.', ai_session_ids),
    'created_at': gh_time(created_at), 'updated_at': gh_time(coalesce(merged_at, created_at)),
    'closed_at': gh_time(merged_at), 'merged_at': gh_time(merged_at), 'merge_commit_sha': merge_sha, 'draft': false,
    'head': {'label': split_part(repo, '/', 1) || ':change-' || number, 'ref': 'change-' || number, 'sha': head_sha,
             'repo': {'full_name': repo}},
    'base': {'label': split_part(repo, '/', 1) || ':main', 'ref': 'main', 'repo': {'id': 50000 + repo_idx, 'full_name': repo}},
    'author_association': 'MEMBER', 'merged': merged_at IS NOT NULL, 'additions': lines_added, 'deletions': lines_deleted
}) AS VARCHAR) AS line
FROM pulls ORDER BY repo, number
"""

# Each deployment ships main's head at its time (the newest change merged in its repository), as a
# deploy of a linear main branch does; statuses in order: in_progress, then success or failure (a
# rollback: success, then failure), and inactive on a success once a newer one succeeded.
DEPLOYMENTS_SQL = """
CREATE TEMP TABLE deploys AS
WITH merged AS (SELECT repo, merged_at, merge_sha FROM pulls WHERE merged_at IS NOT NULL),
numbered AS (SELECT *, row_number() OVER (ORDER BY deployment_id) AS idx FROM world_deployments),
headed AS (
    SELECT d.*, m.merge_sha AS sha
    FROM numbered d ASOF LEFT JOIN merged m ON m.repo = d.repo AND d.deployed_at >= m.merged_at
)
SELECT *, deployed_at - INTERVAL 3 MINUTE AS created_at,
       CASE WHEN status = 'success'
            THEN lead(deployed_at) OVER (PARTITION BY repo, status = 'success' ORDER BY deployed_at, idx) END AS superseded_at
FROM headed
"""

DEPLOYMENT_LINES_SQL = """
WITH shaped AS (
    SELECT repo, deployed_at, 3000000000 + idx AS id, sha, created_at, 'production' AS environment, true AS production,
           list_reverse(list_filter([
               deployment_status(idx * 10 + 1, 'in_progress', created_at + INTERVAL 30 SECOND, 'production'),
               deployment_status(idx * 10 + 2, CASE WHEN status = 'failure' THEN 'failure' ELSE 'success' END,
                                 deployed_at, 'production'),
               CASE WHEN status = 'rolled_back'
                    THEN deployment_status(idx * 10 + 3, 'failure', deployed_at + INTERVAL 20 MINUTE, 'production') END,
               CASE WHEN superseded_at IS NOT NULL
                    THEN deployment_status(idx * 10 + 4, 'inactive', superseded_at, 'production') END
           ], lambda s: s IS NOT NULL)) AS statuses
    FROM deploys
    UNION ALL  -- the same commit on staging first: not a release
    SELECT repo, deployed_at - INTERVAL 1 HOUR, 3900000000 + idx, sha, created_at - INTERVAL 1 HOUR, 'staging', false,
           [deployment_status(idx * 10 + 9, 'success', deployed_at - INTERVAL 1 HOUR, 'staging')]
    FROM deploys WHERE {staging} AND idx = 1
)
SELECT repo, CAST(to_json({
    'url': api_url(repo) || '/deployments/' || id, 'id': id, 'node_id': 'DE_kwDO' || upper(left(md5('de:' || id), 12)),
    'sha': sha, 'ref': 'main', 'task': 'deploy', 'payload': '{}'::JSON, 'original_environment': environment,
    'environment': environment, 'description': NULL, 'creator': {'login': 'deploy-bot', 'id': 900, 'type': 'Bot'},
    'created_at': gh_time(created_at), 'updated_at': gh_time(created_at),
    'statuses_url': api_url(repo) || '/deployments/' || id || '/statuses', 'repository_url': api_url(repo),
    'transient_environment': false, 'production_environment': production, 'statuses': statuses
}) AS VARCHAR) AS line
FROM shaped ORDER BY repo, deployed_at, id
"""

# one array per pull request (`GET .../pulls/N/reviews`), appended per repository
REVIEW_LINES_SQL = """
WITH reviews AS (
    SELECT r.*, p.repo, p.number, p.head_sha, u.login, u.github_id,
           4000000000 + row_number() OVER (ORDER BY r.review_id) AS id
    FROM world_reviews r JOIN pulls p USING (change_id) JOIN people_ids u ON u.user_id = r.reviewer_id
),
objects AS (
    SELECT repo, number, submitted_at, id, CAST(to_json({
        'id': id, 'node_id': 'PRR_kwDO' || upper(left(md5('prr:' || id), 12)),
        'user': {'login': login, 'id': github_id, 'type': 'User'}, 'body': session_body('', ai_session_ids),
        'state': upper(state), 'html_url': 'https://github.com/' || repo || '/pull/' || number || '#pullrequestreview-' || id,
        'pull_request_url': api_url(repo) || '/pulls/' || number, 'author_association': 'MEMBER',
        '_links': {'html': {'href': 'https://github.com/' || repo || '/pull/' || number || '#pullrequestreview-' || id},
                   'pull_request': {'href': api_url(repo) || '/pulls/' || number}},
        'submitted_at': gh_time(submitted_at), 'commit_id': head_sha
    }) AS VARCHAR) AS object
    FROM reviews
)
SELECT repo, '[' || string_agg(object, ',' ORDER BY submitted_at, id) || ']' AS line
FROM objects GROUP BY repo, number ORDER BY repo, number
"""

PEOPLE_CSV_SQL = """
SELECT user_id, team, org, concat_ws(';', account_id, email, login, install_id) AS aliases FROM people_ids ORDER BY user_id
"""

ID_MAPS = {
    "sessions": "SELECT session_id, vendor_id, gateway FROM session_ids ORDER BY session_id",
    "invocations": "SELECT invocation_id, vendor_id FROM invocation_ids ORDER BY invocation_id",
    "changes": "SELECT change_id, vendor_id FROM pulls ORDER BY change_id",
    "deployments": "SELECT deployment_id, repo || '/deployments/' || (3000000000 + idx) AS vendor_id FROM deploys "
                   "ORDER BY deployment_id",
    "reviews": "SELECT r.review_id, p.vendor_id || '/reviews/' || (4000000000 + row_number() OVER (ORDER BY r.review_id)) "
               "AS vendor_id FROM world_reviews r JOIN pulls p USING (change_id) ORDER BY r.review_id",
    "people": "SELECT user_id, account_id, email, login, install_id FROM people_ids ORDER BY user_id",
}

# settings
GATEWAY_TOOLS = ("codex", "copilot", "cursor")  # the world's tools whose model mix needs the LiteLLM gateway
FAILED_CALL = "failed call (status failure)"
NOT_FOUND = ('{"message": "Not Found", "documentation_url": '
             '"https://docs.github.com/rest/pulls/reviews#list-reviews-for-a-pull-request", "status": "404"}')
CRLF = "chr(13) || chr(10)"
MACROS = f"""
CREATE OR REPLACE TEMP MACRO uuid_of(x) AS regexp_replace(md5(x), '^(.{{8}})(.{{4}}).(.{{3}}).(.{{3}})(.{{12}})$',
                                                          '\\1-\\2-4\\3-8\\4-\\5');
CREATE OR REPLACE TEMP MACRO gh_time(t) AS strftime(t, '%Y-%m-%dT%H:%M:%SZ');
CREATE OR REPLACE TEMP MACRO api_url(repo) AS 'https://api.github.com/repos/' || repo;
CREATE OR REPLACE TEMP MACRO session_body(text, ids) AS concat_ws({CRLF} || {CRLF}, nullif(text, ''),
    nullif(array_to_string(list_transform(ids, lambda x: 'AI-Session: ' || uuid_of('session:' || x)), {CRLF}), ''));
CREATE OR REPLACE TEMP MACRO deployment_status(id, state, moment, environment) AS {{
    'id': 5000000000 + id, 'state': state, 'creator': {{'login': 'deploy-bot', 'id': 900, 'type': 'Bot'}},
    'description': NULL::VARCHAR, 'environment': environment, 'created_at': gh_time(moment), 'updated_at': gh_time(moment)}};
"""
