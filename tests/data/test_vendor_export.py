"""A generated agentic world written as vendor exports (data/vendor_export.py) and run through the
whole pipeline: every count equal to what the world holds (Claude Code lines of code included, as
lines_accepted), the injected failed, malformed, staging and repeated records rejected with their
reasons, no unmapped identity, and the world's deployed changes reaching a successful deployment.

Here rather than beside the adapters (tests/pipeline/ingest/sources/): what is under test is the export
(the module this file mirrors), checked the only way that proves it: the adapters read it back.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from data.generate import generate_world
from data.seeds import TUNING_SEEDS
from data.vendor_export import VendorExport, export_vendor_world
from pipeline.settings import Settings
from flows import run_local
from pipeline.storage import connect

USERS, WEEKS, SEED = 20, 2, 3
DATASETS = ("token_usage", "invocations", "changes", "deployments", "reviews", "people")


@dataclass(frozen=True)
class Loaded:
    world: Path
    export: VendorExport
    db: Path


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    assert SEED in TUNING_SEEDS  # the test reads the world's contents: never a held-out world
    root = tmp_path_factory.mktemp("vendor_world")
    generate_world(root / "world", users=USERS, weeks=WEEKS, seed=SEED, style="agentic")
    export = export_vendor_world(root / "world", root / "vendor")
    run_local(root / "vendor", root / "goodhart.duckdb", Settings())
    return Loaded(root / "world", export, root / "goodhart.duckdb")


@pytest.fixture()
def con(loaded: Loaded):
    """The run's database, with the world (world_<dataset>) and the export's id maps (ids_<dataset>) as views."""
    with connect(loaded.db, read_only=True) as con:
        for name in DATASETS[:2]:
            con.execute(f"CREATE TEMP VIEW world_{name} AS SELECT * FROM read_parquet('{loaded.world / name}/*.parquet')")
        for name in DATASETS[2:5]:
            con.execute(f"CREATE TEMP VIEW world_{name} AS SELECT * FROM read_parquet('{loaded.world / name}.parquet')")
        con.execute(f"CREATE TEMP VIEW world_people AS SELECT * FROM read_csv('{loaded.world / 'people.csv'}')")
        for name, frame in loaded.export.ids.items():
            con.register(f"ids_{name}", frame)
        yield con


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.sql(sql).fetchall()


def test_every_dataset_loads_as_many_rows_as_the_world_holds(con: duckdb.DuckDBPyConnection) -> None:
    for name in DATASETS:
        world, loaded = rows(con, f"SELECT (SELECT count(*) FROM world_{name}), (SELECT count(*) FROM main.{name})")[0]
        assert (name, loaded) == (name, world) and world > 0


def test_lines_of_code_and_tokens_per_session_equal_the_worlds(con: duckdb.DuckDBPyConnection) -> None:
    per_session = """
        SELECT {session}, user_id, count(*), sum(input_tokens), sum(output_tokens), sum(cache_read_tokens),
               sum(cache_write_tokens) FROM {table} GROUP BY ALL"""
    world = per_session.format(session="s.vendor_id", table="world_token_usage JOIN ids_sessions s USING (session_id)")
    loaded = per_session.format(session="session_id", table="main.token_usage")
    assert rows(con, f"({world}) EXCEPT ({loaded})") == rows(con, f"({loaded}) EXCEPT ({world})") == []
    lines = "SELECT {session}, count(*), sum(lines_accepted), count(lines_accepted) FROM {table} GROUP BY ALL"
    world = lines.format(session="s.vendor_id", table="world_invocations JOIN ids_sessions s USING (session_id)")
    loaded = lines.format(session="session_id", table="main.invocations")
    assert rows(con, f"({world}) EXCEPT ({loaded})") == rows(con, f"({loaded}) EXCEPT ({world})") == []
    assert rows(con, "SELECT sum(lines_accepted) > 0, count(*) = count(lines_accepted) FROM main.invocations") == [(True, True)]
    # both token sources carry some of it: gateway sessions through LiteLLM, the others through Claude Code
    assert rows(con, "SELECT tool, count(DISTINCT user_id) > 1 FROM main.token_usage GROUP BY ALL ORDER BY ALL") == [
        ("claude-code", True), ("litellm", True)]


def test_prompts_keep_their_time_person_repository_commit_and_tool_calls(con: duckdb.DuckDBPyConnection) -> None:
    mismatched = rows(con, """
        SELECT w.invocation_id FROM world_invocations w
        JOIN ids_invocations m USING (invocation_id) JOIN main.invocations i ON i.invocation_id = m.vendor_id
        WHERE (w.ts, w.user_id, w.repo, w.commit_sha, w.prompt_length) IS DISTINCT FROM
              (i.ts, i.user_id, i.repo, i.commit_sha, i.prompt_length)
           -- a commit is a Bash tool call: a turn the world says committed without one shows that one call
           OR i.tool_calls IS DISTINCT FROM greatest(w.tool_calls, CAST(w.commit_sha IS NOT NULL AS INTEGER))
           -- text where the world has it; a withheld prompt arrives <REDACTED>, its hash unknown to Claude Code
           OR (i.prompt_fingerprint IS NULL) <> (w.prompt_text IS NULL)""")
    assert mismatched == []


def test_changes_deployments_and_reviews_keep_their_people_times_and_outcomes(con: duckdb.DuckDBPyConnection) -> None:
    seconds = "date_trunc('second', {})"
    assert rows(con, f"""
        SELECT w.change_id FROM world_changes w JOIN ids_changes m USING (change_id) JOIN main.changes c ON c.change_id = m.vendor_id
        WHERE (w.repo, w.author_id, {seconds.format('w.merged_at')}, w.lines_added, w.lines_deleted)
              IS DISTINCT FROM (c.repo, c.author_id, c.merged_at, c.lines_added, c.lines_deleted)
           OR len(w.ai_session_ids) <> len(c.ai_session_ids)""") == []
    assert rows(con, f"""
        SELECT w.deployment_id FROM world_deployments w JOIN ids_deployments m USING (deployment_id)
        JOIN main.deployments d ON d.deployment_id = m.vendor_id
        WHERE (w.repo, {seconds.format('w.deployed_at')}, w.status) IS DISTINCT FROM (d.repo, d.deployed_at, d.status)""") == []
    assert rows(con, f"""
        SELECT w.review_id FROM world_reviews w JOIN ids_reviews m USING (review_id) JOIN main.reviews r ON r.review_id = m.vendor_id
        JOIN ids_changes c ON c.change_id = w.change_id
        WHERE (c.vendor_id, w.reviewer_id, {seconds.format('w.submitted_at')}, w.state, len(w.ai_session_ids))
              IS DISTINCT FROM (r.change_id, r.reviewer_id, r.submitted_at, r.state, len(r.ai_session_ids))""") == []


def test_the_injected_faults_are_rejected_with_their_reasons(loaded: Loaded, con: duckdb.DuckDBPyConnection) -> None:
    expected = loaded.export.expected_rejects
    assert expected.select("dataset", "reason").rows() == [
        ("deployments", "not a production environment: staging"),
        ("invocations", "duplicate"),
        ("reviews", "not a pull request review"),
        ("token_usage", "duplicate"),
        ("token_usage", "failed call (status failure)"),
        ("token_usage", "malformed JSON"),
    ]
    assert rows(con, "SELECT dataset, reason, count(*) FROM rejected_rows GROUP BY ALL ORDER BY ALL") == expected.rows()
    # a file saved twice under another name is the same content: skipped, neither loaded nor rejected
    copies = [path for paths in loaded.export.files.values() for path in paths if " (1)." in path.name]
    read = {Path(name) for (name,) in rows(con, "SELECT DISTINCT path FROM loaded_files")}
    assert len(copies) == 2
    for copy in copies:  # exactly one of the pair was read
        assert (copy in read) != (copy.with_name(copy.name.replace(" (1)", "")) in read)


def test_every_identity_names_a_person(con: duckdb.DuckDBPyConnection) -> None:
    assert rows(con, "SELECT * FROM unmapped_identities") == []
    # the sources named them otherwise: account ids, emails, an install id, GitHub logins
    assert rows(con, "SELECT count(*) FROM people_aliases") == rows(con, """
        SELECT count(account_id) + count(email) + count(login) + count(install_id) FROM ids_people""")
    assert rows(con, "SELECT count(install_id) FROM ids_people") == [(1,)]


def test_the_worlds_deployed_changes_reach_a_successful_deployment(con: duckdb.DuckDBPyConnection) -> None:
    world, reached = rows(con, """
        WITH shipped AS (SELECT DISTINCT m.vendor_id FROM world_deployments, unnest(change_ids) AS u(change_id)
                         JOIN ids_changes m ON m.change_id = u.change_id WHERE status = 'success'),
        loaded AS (SELECT DISTINCT unnest(change_ids) AS vendor_id FROM main.deployments WHERE status = 'success')
        SELECT count(*), count(loaded.vendor_id) FROM shipped LEFT JOIN loaded USING (vendor_id)""")[0]
    assert world > 20 and reached / world >= 0.95


def test_the_exports_labels_are_read_in_the_vendors_ids(loaded: Loaded) -> None:
    """goodhart evaluate on the export: every labelled session and true link names a session and a
    change the run holds, so the session and link levels are scored, not left empty."""
    from flows import evaluate_run
    from pipeline.ops.evaluate import read_labels

    labels = read_labels(loaded.export.out_dir)
    with connect(loaded.db, read_only=True) as con:
        con.register("labelled", labels.sessions.select("session_id"))
        con.register("true_links", labels.links)
        assert rows(con, "SELECT count(*) FROM labelled ANTI JOIN session_scores USING (session_id)") == [(0,)]
        assert rows(con, "SELECT count(*) FROM true_links ANTI JOIN session_scores USING (session_id)") == [(0,)]
        assert rows(con, "SELECT count(*) FROM true_links ANTI JOIN main.changes USING (change_id)") == [(0,)]
    assert labels.sessions.height == pl.read_parquet(loaded.world / "labels" / "sessions.parquet").height
    links = evaluate_run(loaded.db, loaded.export.out_dir)["link"]
    found = dict(zip(links.get_column("metric").to_list(), links.get_column("goodhart").to_list(), strict=True))
    assert found["link_recall"] > 0.5 and found["deployed_recall"] > 0.5


def test_a_second_run_on_the_same_folder_adds_nothing(loaded: Loaded) -> None:
    with connect(loaded.db, read_only=True) as con:
        before = rows(con, "SELECT (SELECT count(*) FROM token_usage), (SELECT count(*) FROM rejected_rows)")
    run_local(loaded.export.out_dir, loaded.db, Settings())
    with connect(loaded.db, read_only=True) as con:
        assert rows(con, "SELECT (SELECT count(*) FROM token_usage), (SELECT count(*) FROM rejected_rows)") == before
        assert rows(con, "SELECT rows_loaded, rows_rejected FROM runs ORDER BY started_at DESC LIMIT 1") == [(0, 0)]
