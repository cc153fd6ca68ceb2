"""Published scores: the contract's score tables and analysts' views, published atomically with a reader attached."""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb

from flows import run_local
from pipeline.publish import scores
from pipeline.settings import Settings

CONTRACT_SCORE_COLUMNS = {
    "user_week_scores": {"user_id", "team", "week_start", "tokens", "cost_usd", "sessions", "merged_changes",
                         "deployed_changes", "score", "flagged", "severity", "reasons", "wasted_cost_usd"},
    "session_scores": {"session_id", "user_id", "started_at", "tokens", "cost_usd", "linked_change_ids", "deployed",
                       "score", "flagged", "reasons"},
    "flags": {"run_id", "detectors", "evidence"},
    "rejected_rows": {"dataset", "source_file", "position", "raw", "reason"},
    "runs": {"run_id", "started_at", "ended_at", "inputs_seen", "rows_loaded", "rows_rejected", "config", "code_version"},
}
VIEW_COLUMNS = {
    "flagged_user_weeks": ["flag_id", "user_id", "team", "org", "week_start", "tokens", "cost_usd", "wasted_cost_usd",
                           "merged_changes", "deployed_changes", "score", "severity", "detectors", "reasons", "verdict",
                           "evidence", "case_file"],
    "flagged_sessions": ["flag_id", "session_id", "user_id", "team", "started_at", "ended_at", "tokens", "cost_usd",
                         "wasted_cost_usd", "score", "severity", "detectors", "reasons", "linked_change_ids", "deployed",
                         "verdict", "evidence", "case_file"],
    "wasted_compute_by_team_week": ["team", "org", "week_start", "people", "tokens", "cost_usd", "wasted_cost_usd",
                                    "wasted_share", "flagged_user_weeks"],
    "links": ["session_id", "user_id", "change_id", "method", "methods", "confidence", "credit", "evidence", "lag_hours",
              "weight", "repo", "merged_at", "deployed", "first_deployment_id", "first_deployed_at"],
}


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {row[0] for row in con.sql(f"DESCRIBE {table}").fetchall()}


def test_run_publishes_contract_tables_while_a_reader_is_attached(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    reader = duckdb.connect(str(db), read_only=True)
    before = reader.sql("SELECT run_id FROM runs").fetchall()

    input_dir = tmp_path / "input"
    shutil.copytree(contract_example, input_dir)
    (input_dir / "token_usage.csv").write_text(
        (contract_example / "token_usage.csv").read_text() + "r-5,2026-10-06T10:00:00Z,carol,s-300,sonnet-4.5,100,10,0,0,,kiro\n"
    )
    second = run_local(input_dir, db, Settings())  # the reader stays attached throughout

    assert reader.sql("SELECT run_id FROM runs").fetchall() == before  # its snapshot, never half a run
    reader.close()
    with duckdb.connect(str(db), read_only=True) as con:
        for table, expected in CONTRACT_SCORE_COLUMNS.items():
            assert expected <= _columns(con, table), table
        assert con.sql("SELECT count(*) FROM runs").fetchall() == [(2,)]
        # the changed file is read again: the new row loads, the four known ids are duplicates
        assert con.sql("SELECT count(*) FROM token_usage").fetchall() == [(5,)]
        assert con.sql("SELECT reason, count(*) FROM rejected_rows GROUP BY reason").fetchall() == [("duplicate", 4)]
        assert con.sql("SELECT count(*) FROM session_scores").fetchall() == [(3,)]
        types = dict(con.sql("SELECT column_name, column_type FROM (DESCRIBE user_week_scores)").fetchall())
        assert types["week_start"] == "DATE" and types["score"] == "DOUBLE" and types["flagged"] == "BOOLEAN"
        assert dict(con.sql("SELECT column_name, column_type FROM (DESCRIBE session_scores)").fetchall())[
            "linked_change_ids"] == "VARCHAR[]"
    assert second.load.datasets["token_usage"].rows_loaded == 1


def test_analyst_views_have_their_documented_columns_and_rows(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    with duckdb.connect(str(db), read_only=True) as con:
        for view, columns in VIEW_COLUMNS.items():
            assert [row[0] for row in con.sql(f"DESCRIBE {view}").fetchall()] == columns, view
        assert con.sql("SELECT user_id, week_start::VARCHAR FROM flagged_user_weeks").fetchall() == [("bob", "2026-10-05")]
        assert con.sql("SELECT session_id, change_id, method FROM links ORDER BY change_id").fetchall() == [
            ("s-100", "pr-17", "explicit_session_id"), ("s-100", "pr-18", "explicit_review")]
        (people, cost, wasted), = con.sql(
            "SELECT sum(people), sum(cost_usd), sum(wasted_cost_usd) FROM wasted_compute_by_team_week").fetchall()
        (cost_total, wasted_total), = con.sql("SELECT sum(cost_usd), sum(wasted_cost_usd) FROM user_week_scores").fetchall()
        assert people == 2 and cost == cost_total and wasted == wasted_total > 0


def test_weeks_to_republish_are_the_rescored_the_changed_run_ups_and_the_new_verdicts() -> None:
    w1, w2, w3, w4, w5 = ("2026-09-07", "2026-09-14", "2026-09-21", "2026-09-28", "2026-10-05")
    con = duckdb.connect()
    con.execute(f"""
        CREATE TABLE user_week_run_ups AS SELECT * FROM (VALUES ('a', DATE '{w1}', 0.5), ('b', DATE '{w2}', 0.6)) t(user_id, week_start, score);
        CREATE TEMP TABLE __previous_user_week_run_ups AS SELECT * FROM (VALUES ('a', DATE '{w1}', 0.5), ('c', DATE '{w3}', 0.7)) t(user_id, week_start, score);
        CREATE TABLE session_run_ups AS SELECT * FROM (VALUES ('s1', DATE '{w1}', 0.4)) t(session_id, week_start, score);
        CREATE TEMP TABLE __previous_session_run_ups AS SELECT * FROM session_run_ups;
        CREATE TABLE user_week_scores AS SELECT * FROM (VALUES ('user_week:d:{w4}', DATE '{w4}'), ('user_week:e:{w1}', DATE '{w1}')) t(flag_id, week_start);
        CREATE TABLE session_scores AS SELECT * FROM (VALUES ('session:s9', DATE '{w5}')) t(flag_id, week_start);
        CREATE TABLE applied_verdicts AS SELECT * FROM (VALUES ('user_week:e:{w1}', 'legitimate'), ('session:s9', 'confirmed')) t(flag_id, verdict);
        CREATE TABLE verdicts_now AS SELECT * FROM (VALUES ('user_week:e:{w1}', 'legitimate'), ('user_week:d:{w4}', 'legitimate')) t(flag_id, verdict);
    """)
    weeks = scores.weeks_to_republish(con, [date(2026, 10, 12)], "SELECT * FROM verdicts_now")
    # b entered (w2), c left (w3); d's verdict is new (w4); s9's verdict is gone (w5); a, s1 and e unchanged
    assert [str(week) for week in weeks] == [w2, w3, w4, w5, "2026-10-12"]


def test_partitions_are_weeks_in_order_up_to_a_row_budget() -> None:
    con = duckdb.connect()
    weeks = [date(2026, 9, 7), date(2026, 9, 14), date(2026, 9, 21), date(2026, 9, 28)]
    # rows to score per week (user-weeks + sessions): 30, 50, 200, 10
    con.execute("CREATE TABLE user_week_peer_features AS SELECT * FROM (VALUES (?::DATE, 'u1'), (?::DATE, 'u1'), "
                "(?::DATE, 'u1'), (?::DATE, 'u1')) t(week_start, user_id)", weeks)
    con.execute("CREATE TABLE session_features AS SELECT week_start, 's' || i AS session_id FROM "
                "(VALUES (?::DATE, 29), (?::DATE, 49), (?::DATE, 199), (?::DATE, 9)) t(week_start, n), range(n) r(i)",
                weeks)
    assert scores.partition_weeks(con, max_rows=100) == [tuple(weeks[:2]), (weeks[2],), (weeks[3],)]
    assert scores.partition_weeks(con, max_rows=1000) == [tuple(weeks)]
    assert scores.partition_weeks(con, max_rows=0) == [(week,) for week in weeks]
    assert scores.partition_weeks(con, [weeks[0], weeks[3]], max_rows=1000) == [(weeks[0], weeks[3])]
    part = scores.read_partition(con, weeks[:2])
    assert part.weeks == tuple(weeks[:2]) and part.sessions.height == 78 and part.user_weeks.height == 2
    assert part.sessions.get_column("week_start").is_sorted()
    assert scores.read_partition(con, []).sessions.columns == ["week_start", "session_id"]
