"""Root cause by dimension (pipeline/publish/root_cause.py): each dimension's members add up to the week's change."""
from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from features.build import TEMPLATE_CONTEXT
from pipeline import sql_models
from pipeline.publish import root_cause
from pipeline.publish.report import write_report
from pipeline.storage import connect, create_raw_tables
from tests.pipeline.publish.test_report import rules_only_run

W1, W2 = "2026-09-07", "2026-09-14"


def _world(path: Path) -> duckdb.DuckDBPyConnection:
    """Two weeks, three people: edge (ann, bob) on opus via cursor in repo a/x; core (cy) on sonnet, two repos.
    Awkward amounts, so rounding to the cent matters."""
    con = connect(path)
    create_raw_tables(con)
    requests = [  # request, ts, user, session, model, cost, tool
        ("r1", f"{W1} 10:00", "ann", "s1", "opus-4.5", 10.0 / 3, "cursor"),
        ("r2", f"{W1} 11:00", "cy", "s2", "sonnet-4.5", 2.0, "claude_code"),
        ("r3", f"{W2} 10:00", "ann", "s3", "opus-4.5", 7.0, "cursor"),
        ("r4", f"{W2} 10:30", "bob", "s4", "opus-4.5", 5.0 / 7, None),
        ("r5", f"{W2} 11:00", "cy", "s5", "sonnet-4.5", 3.0, "claude_code"),
        ("r6", "2026-09-21 09:00", "cy", "s6", "sonnet-4.5", 1.0, "claude_code"),  # W3: makes W2 complete
    ]
    con.executemany(
        "INSERT INTO token_usage VALUES (?, CAST(? AS TIMESTAMP), ?, ?, ?, 100, 50, 0, 0, ?, 'input', ?, 1, 1)",
        [(r, ts, u, s, m, c, t) for r, ts, u, s, m, c, t in requests])
    prompts = [("i1", "s1", "a/x"), ("i3", "s3", "a/x"), ("i4", "s4", "a/x"), ("i2", "s2", "c/y"), ("i5", "s5", "c/y"),
               ("i5b", "s5", "c/z"), ("i5c", "s5", "c/z")]
    con.executemany("INSERT INTO invocations (invocation_id, ts, user_id, session_id, repo, file_id, position) "
                    "VALUES (?, TIMESTAMP '2026-09-07 10:00', 'x', ?, ?, 1, 1)", prompts)
    con.execute("""
        CREATE TABLE user_week_scores AS
        SELECT * FROM (VALUES
            ('ann', 'edge', 'eng', DATE '2026-09-07', 10.0 / 3, 10.0 / 3 * 0.5, true, ['rule:idle_agents']),
            ('cy',  'core', 'eng', DATE '2026-09-07', 2.0, 0.0, false, CAST([] AS VARCHAR[])),
            ('ann', 'edge', 'eng', DATE '2026-09-14', 7.0, 7.0 * 0.9, true, ['rule:idle_agents']),
            ('bob', 'edge', 'eng', DATE '2026-09-14', 5.0 / 7, 5.0 / 7, true, ['rule:prompt_loop']),
            ('cy',  'core', 'eng', DATE '2026-09-14', 3.0, 3.0 / 7, true, ['rule:prompt_loop']),
            ('cy',  'core', 'eng', DATE '2026-09-21', 1.0, 0.0, false, CAST([] AS VARCHAR[]))
        ) AS t(user_id, team, org, week_start, cost_usd, wasted_cost_usd, flagged, detectors)
    """)
    features = sql_models.load("features", TEMPLATE_CONTEXT)  # the spend and prompt splits they read
    features.run_macros(con)
    for table in ("session_spend", "session_repo_prompts"):
        features.build(con, table)
    models = sql_models.load("pipeline.publish")  # the monitor models the publish step builds
    models.run_macros(con)
    for table in ("user_week_spend_shares", "waste_by_dimension_week", "waste_root_cause"):
        models.build(con, table)
    return con


def _sums(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.sql("SELECT week_start, dimension, sum(change_cents), any_value(week_change_cents), count(DISTINCT week_change_cents) "
                   "FROM waste_root_cause GROUP BY ALL ORDER BY ALL").fetchall()


def test_each_dimension_adds_up_to_the_weeks_change_to_the_cent(tmp_path: Path) -> None:
    con = _world(tmp_path / "g.duckdb")
    sums = _sums(con)
    assert {d for _, d, *_ in sums} == set(root_cause.DIMENSIONS)
    # W2: 6.30 + 0.714285.. + 0.428571.. = 7.442857 -> 744 cents; W1 1.666.. -> 167 cents (largest remainder over 911)
    week_change = dict(((str(w), d), (s, t)) for w, d, s, t, _ in sums)
    for (week, dimension), (summed, total) in week_change.items():
        assert summed == total, (week, dimension)
    assert week_change[("2026-09-14", "team")][1] == 744 - 167
    teams = dict(con.sql("SELECT member, change_cents FROM waste_root_cause WHERE dimension = 'team' "
                         "AND week_start = DATE '2026-09-14'").fetchall())
    assert teams == {"edge": 701 - 167, "core": 43}
    repos = dict(con.sql("SELECT member, change_cents FROM waste_root_cause WHERE dimension = 'repository' "
                         "AND week_start = DATE '2026-09-14'").fetchall())
    assert repos == {"a/x": 701 - 167, "c/y": 14, "c/z": 29}  # cy's 3/7 split 1:2 over its prompts' repositories
    tools = dict(con.sql("SELECT member, change_cents FROM waste_root_cause WHERE dimension = 'tool' "
                         "AND week_start = DATE '2026-09-14'").fetchall())
    assert tools == {"cursor": 630 - 167, "(unknown)": 71, "claude_code": 43}


def test_ranked_by_dollar_impact_and_said_in_one_line(tmp_path: Path) -> None:
    con = _world(tmp_path / "g.duckdb")
    week = root_cause.rows(con)
    assert {r["week_start"].isoformat() for r in week} == {"2026-09-14"}
    team = [r for r in week if r["dimension"] == "team"]
    assert [(r["member"], r["rank"]) for r in team] == [("edge", 1), ("core", 2)]
    line = root_cause.headline(week)
    assert line.startswith("2026-W38 waste +$5.77: ")
    assert "team edge +$5.34 (2 people; idle agents, prompt loop)" in line
    # W3 has no waste: a fall, no reasons given for it
    w3 = root_cause.headline(root_cause.rows(con, week=__import__("datetime").date(2026, 9, 21)))
    assert w3.startswith("2026-W39 waste \u2212$7.44") and "(" not in w3


@pytest.mark.slow
def test_generated_world_root_cause_matches_the_report(tmp_path: Path) -> None:
    db = rules_only_run(tmp_path, users=20, weeks=3, seed=2)
    with duckdb.connect(str(db), read_only=True) as con:
        sums = _sums(con)
        assert sums and all(s == t and n == 1 for _, _, s, t, n in sums)
        assert any(t != 0 for *_, t, _ in sums)
    write_report(db, tmp_path / "out", min_team_size=3)
    with open(tmp_path / "out" / "wasted_by_week.csv") as fh:
        weeks = {row["week_start"]: Decimal(row["wasted_cost_usd"]) for row in csv.DictReader(fh)}
    starts = sorted(weeks)
    expected = {(w, d): weeks[w] - weeks[p] for p, w in zip(starts, starts[1:]) for d in root_cause.DIMENSIONS}
    with open(tmp_path / "out" / root_cause.REPORT_FILE) as fh:
        got: dict[tuple[str, str], Decimal] = {}
        for row in csv.DictReader(fh):
            got[(row["week_start"], row["dimension"])] = got.get((row["week_start"], row["dimension"]), 0) + Decimal(row["change_usd"])
            assert Decimal(row["week_change_usd"]) == weeks[row["week_start"]] - weeks[starts[starts.index(row["week_start"]) - 1]]
    assert got == {k: v for k, v in expected.items() if k in got} and got
    page = (tmp_path / "out" / "report.html").read_text()
    assert 'id="root-cause"' in page
