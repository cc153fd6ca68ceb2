"""The honest leaderboard: shipped_work rows in, rows out; `goodhart leaderboard`; and its
robustness on generated worlds (docs/leaderboard.md)."""
from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from data.generate import generate_world
from pipeline.cli import main
from pipeline.publish.leaderboard import leaderboard
from pipeline.settings import Settings
from flows import run_local
from pipeline.storage import read_sql

WEEK = "2026-10-05"


def _tables(con: duckdb.DuckDBPyConnection, changes: list[tuple], links: list[tuple], scores: list[tuple]) -> None:
    """change_deployments (change_id, author_id, lines_changed, first_deployed_at), session_links
    (session_id, change_id, method, credit) and user_week_scores (user_id, week_start, flagged)."""
    con.execute("CREATE TABLE change_deployments (change_id VARCHAR, author_id VARCHAR, lines_changed BIGINT, "
                "first_deployed_at TIMESTAMP, deployed BOOLEAN)")
    con.executemany("INSERT INTO change_deployments VALUES (?, ?, ?, ?, ?)",
                    [(*row, row[3] is not None) for row in changes])
    con.execute("CREATE TABLE session_links (session_id VARCHAR, change_id VARCHAR, method VARCHAR, credit DOUBLE)")
    con.executemany("INSERT INTO session_links VALUES (?, ?, ?, ?)", links)
    con.execute("CREATE TABLE user_week_scores (user_id VARCHAR, team VARCHAR, org VARCHAR, week_start DATE, "
                "tokens BIGINT, cost_usd DOUBLE, wasted_cost_usd DOUBLE, flagged BOOLEAN)")
    con.executemany("INSERT INTO user_week_scores VALUES (?, 'team-a', 'org', ?, 1000, 10.0, 0.0, ?)", scores)
    con.execute("CREATE TABLE people (user_id VARCHAR, team VARCHAR, org VARCHAR)")


def _shipped(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    frame = con.sql(read_sql("pipeline.publish", "shipped_work")).pl()
    return {row["user_id"]: row for row in frame.iter_rows(named=True)}


def test_splitting_one_piece_of_work_earns_what_shipping_it_whole_earns() -> None:
    con = duckdb.connect()
    deployed = f"{WEEK} 12:00"
    whole = [("whole", "alice", 100, deployed)]
    split = [(f"part-{i}", "bob", 10, deployed) for i in range(10)]
    typical = [(f"t-{i}", "carol", 50, deployed) for i in range(11)]  # the company's median change: 50 lines
    _tables(con, whole + split + typical,
            [("s-a", "whole", "explicit_session_id", 1.0)]
            + [("s-b", f"part-{i}", "explicit_commit", 1.0) for i in range(10)]
            + [("s-c", f"t-{i}", "explicit_commit", 1.0) for i in range(11)],
            [(user, WEEK, False) for user in ("alice", "bob", "carol")])
    got = _shipped(con)
    assert got["alice"]["shipped_units"] == pytest.approx(got["bob"]["shipped_units"])
    assert got["bob"]["ai_deployed_changes"] == 10 and got["alice"]["ai_deployed_changes"] == 1
    assert got["alice"]["shipped_units"] == pytest.approx(2.0)  # twice the typical change
    assert got["carol"]["shipped_units"] == pytest.approx(11.0)  # eleven typical changes


def test_units_follow_the_evidence_that_ai_fed_the_change() -> None:
    con = duckdb.connect()
    deployed = f"{WEEK} 12:00"
    _tables(con, [
        ("explicit", "alice", 40, deployed), ("window", "bob", 40, deployed), ("reviewed", "carol", 40, deployed),
        ("unknown-credit", "dan", 40, deployed), ("unknown-size", "erin", None, deployed),
        ("not-deployed", "alice", 40, None),
    ], [
        ("s1", "explicit", "explicit_session_id", 1.0),
        ("s2", "window", "inferred_author_repo_window", 0.25),  # kept 10 lines of the 40
        ("s3", "reviewed", "inferred_review_window", 1.0),  # review work does not make a change AI-written
        ("s4", "unknown-credit", "inferred_author_repo_window", None),
        ("s5", "unknown-size", "inferred_author_repo_window", None),
        ("s6", "not-deployed", "explicit_session_id", 1.0),
    ], [(user, WEEK, False) for user in ("alice", "bob", "carol", "dan", "erin")])
    got = _shipped(con)
    assert got["alice"]["shipped_units"] == pytest.approx(1.0)  # 40 lines, the median deployed change
    assert got["bob"]["shipped_units"] == pytest.approx(0.25)
    assert got["carol"]["shipped_units"] == 0.0 and got["carol"]["ai_deployed_changes"] == 0
    for person in ("dan", "erin"):  # unknown earns nothing, and is counted apart
        assert got[person]["shipped_units"] == 0.0 and got[person]["changes_of_unknown_evidence"] == 1


def test_a_flagged_week_is_held_back() -> None:
    con = duckdb.connect()
    _tables(con, [("c1", "alice", 40, f"{WEEK} 12:00"), ("c2", "bob", 40, f"{WEEK} 12:00")],
            [("s1", "c1", "explicit_commit", 1.0), ("s2", "c2", "explicit_commit", 1.0)],
            [("alice", WEEK, True), ("bob", WEEK, False)])
    got = _shipped(con)
    assert (got["alice"]["shipped_units"], got["alice"]["held_units"]) == (0.0, pytest.approx(1.0))
    assert (got["bob"]["shipped_units"], got["bob"]["held_units"]) == (pytest.approx(1.0), 0.0)
    assert got["alice"]["cost_per_unit"] == pytest.approx(10.0)  # per unit shipped, held or not


def _ranks(db: Path, world: Path) -> pl.DataFrame:
    """Each person-week's percentile within its week, on shipped work and on tokens, with its label."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.sql(f"""
            SELECT s.user_id, s.week_start, labels.is_gaming, labels.tactic, labels.persona,
                   percent_rank() OVER (PARTITION BY s.week_start ORDER BY s.shipped_units) AS units_rank,
                   percent_rank() OVER (PARTITION BY s.week_start ORDER BY s.tokens) AS tokens_rank
            FROM shipped_work AS s
            JOIN read_parquet('{world}/labels/user_weeks.parquet') AS labels USING (user_id, week_start)
        """).pl()


@pytest.fixture(scope="module", params=["agentic", "chat"])
def ranked_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    root = tmp_path_factory.mktemp(f"leaderboard-{request.param}")
    generate_world(root / "world", users=240, weeks=5, seed=13, style=request.param)
    run_local(root / "world", root / "goodhart.duckdb", Settings())
    return _ranks(root / "goodhart.duckdb", root / "world")


def test_no_tactic_climbs_the_honest_leaderboard(ranked_world: pl.DataFrame) -> None:
    gamers = ranked_world.filter(pl.col("is_gaming")).select("user_id", pl.col("tactic").alias("played")).unique()
    by_tactic = ranked_world.join(gamers, on="user_id").group_by("played").agg(
        gaming=pl.col("units_rank").filter(pl.col("is_gaming")).mean(),
        honest=pl.col("units_rank").filter(~pl.col("is_gaming")).mean(),
        tokens_gaming=pl.col("tokens_rank").filter(pl.col("is_gaming")).mean(),
        tokens_honest=pl.col("tokens_rank").filter(~pl.col("is_gaming")).mean(),
    ).drop_nulls()
    assert by_tactic.height >= 6  # most tactics have a gamer with honest weeks to compare
    climbed = by_tactic.filter(pl.col("gaming") > pl.col("honest"))
    assert climbed.is_empty(), climbed
    # the token leaderboard it replaces rewards the same weeks
    assert (by_tactic["tokens_gaming"] > by_tactic["tokens_honest"]).sum() >= by_tactic.height - 1


def test_heavy_honest_shippers_stay_on_top(ranked_world: pl.DataFrame) -> None:
    honest = ranked_world.filter(~pl.col("is_gaming"))
    by_persona = honest.group_by("persona").agg(pl.col("units_rank").mean())
    heavy = by_persona.filter(pl.col("persona") == "heavy_shipper")["units_rank"].item()
    assert heavy >= 0.8 and heavy == by_persona["units_rank"].max()


def test_the_command_ranks_teams_and_names_people_only_on_request(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    world, db = tmp_path / "world", tmp_path / "goodhart.duckdb"
    generate_world(world, users=40, weeks=2, seed=13)
    run_local(world, db, Settings())
    main(["leaderboard", "--db", str(db), "--weeks", "2"])
    teams = capsys.readouterr().out
    assert "honest leaderboard" in teams and " team " in teams.splitlines()[1] and " u0" not in teams
    main(["leaderboard", "--db", str(db), "--by", "person", "--top", "3"])
    people = capsys.readouterr().out.splitlines()
    assert " person " in people[1] and len(people) == 2 + 3 and people[2].split()[1].startswith("u")
    board = leaderboard(db, weeks=2)
    assert board["rank"].to_list() == sorted(board["rank"].to_list()) and board["shipped_units"].is_sorted(descending=True)


def test_a_database_without_the_table_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    with pytest.raises(SystemExit) as exit_:
        main(["leaderboard", "--db", str(db)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
