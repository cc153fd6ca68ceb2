"""The floor: one bare DuckDB query that reads every input file and aggregates per user-week.

It reads every column the pipeline reads (the prompt text included, whose characters it counts)
with plain sums, counts and min/max, and no joins but the final one of per-user-week totals:
no validation, no deduplication, no fingerprints, no sessions, no links, no models. No pipeline
that reads the same files on the same machine can take less; the benchmark reports each step's
time as a multiple of this one. DuckDB's defaults apply (all cores, 80% of memory).
"""
from __future__ import annotations

from pathlib import Path

from bench.world import dataset_files


def _list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def floor_sql(input_dir: Path) -> str:
    """The query, over the parquet files of a world (and its people CSV)."""
    tokens = _list(dataset_files(input_dir, "token_usage", "parquet"))
    prompts = _list(dataset_files(input_dir, "invocations", "parquet"))
    changes = _list(dataset_files(input_dir, "changes", "parquet"))
    deployments = _list(dataset_files(input_dir, "deployments", "parquet"))
    people = _list(dataset_files(input_dir, "people", "csv"))
    return f"""
WITH
requests AS (
    SELECT user_id, date_trunc('week', ts) AS week_start,
           count(*) AS requests, max(request_id) AS last_request, max(session_id) AS last_session,
           sum(input_tokens + output_tokens + coalesce(cache_read_tokens, 0) + coalesce(cache_write_tokens, 0)) AS tokens,
           sum(cost_usd) AS reported_cost_usd, max(model) AS model, max(tool) AS tool
    FROM read_parquet({tokens})
    GROUP BY ALL
),
prompts AS (
    SELECT user_id, date_trunc('week', ts) AS week_start,
           count(*) AS prompts, max(invocation_id) AS last_prompt, max(session_id) AS last_prompt_session,
           count(repo) AS with_repo, sum(length(prompt_text)) AS text_chars, count(prompt_hash) AS hashed,
           sum(prompt_length) AS prompt_length, sum(lines_accepted) AS lines_accepted,
           sum(tool_calls) AS tool_calls, count(commit_sha) AS commits
    FROM read_parquet({prompts})
    GROUP BY ALL
),
merged AS (
    SELECT author_id AS user_id, date_trunc('week', merged_at) AS week_start,
           count(*) AS changes, max(change_id) AS last_change, max(repo) AS repo,
           sum(lines_added + lines_deleted) AS lines_changed,
           sum(len(ai_session_ids)) AS named_sessions, sum(len(commit_shas)) AS commits_merged
    FROM read_parquet({changes})
    GROUP BY ALL
),
shipped AS (
    SELECT count(*) AS deployments, count(*) FILTER (WHERE status = 'success') AS successes,
           max(deployment_id) AS last_deployment, max(repo) AS repo, max(deployed_at) AS last_deployed_at,
           sum(len(change_ids)) AS changes_listed
    FROM read_parquet({deployments})
),
people AS (SELECT user_id, team, org FROM read_csv({people}, header = true, all_varchar = true)),
user_weeks AS (
    SELECT *
    FROM requests
    FULL JOIN prompts USING (user_id, week_start)
    FULL JOIN merged USING (user_id, week_start)
    LEFT JOIN people USING (user_id)
)
SELECT user_weeks.*, shipped.deployments, shipped.successes
FROM user_weeks, shipped
"""


def counts_sql(input_dir: Path) -> str:
    """Rows per input dataset (parquet metadata only: no data is read)."""
    parts = []
    for dataset in ("token_usage", "invocations", "changes", "deployments"):
        files = _list(dataset_files(input_dir, dataset, "parquet"))
        parts.append(f"(SELECT sum(num_rows) FROM parquet_file_metadata({files})) AS {dataset}")
    return "SELECT " + ", ".join(parts)


def run(input_dir: Path) -> dict[str, int]:
    """Run the floor query, fetching its result (one row per user-week) into Arrow."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        result = con.sql(floor_sql(input_dir)).fetch_arrow_table()
        counts = con.sql(counts_sql(input_dir)).fetchall()[0]
    finally:
        con.close()
    rows = dict(zip(("token_usage", "invocations", "changes", "deployments"), map(int, counts), strict=True))
    rows["input_rows"] = sum(rows.values())
    rows["user_weeks"] = result.num_rows
    return rows
