"""The honest leaderboard (`goodhart leaderboard`): AI-assisted shipped work per team, or per
person on request, over the last weeks of a published run. The measure is `shipped_work`
(pipeline/publish/sql/shipped_work.sql); docs/leaderboard.md defines it for managers."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl

from pipeline import sql_models
from pipeline.storage import connect, write_csv

Level = Literal["team", "person"]

ALL_WEEKS = 1_000_000


class LeaderboardError(ValueError):
    """A database without the leaderboard's table (not a published run, or one from before it)."""


def leaderboard(db_path: Path, *, weeks: int = 4, by: Level = "team", top: int = 20) -> pl.DataFrame:
    """The leaderboard over the last `weeks` weeks of the run in `db_path`: rank, token_rank,
    name, shipped_units, cost and tokens per unit, flagged waste share. People are named only with
    `by="person"`."""
    with connect(db_path, read_only=True) as con:
        if not _has_shipped_work(con):
            raise LeaderboardError(f"{db_path} has no shipped_work table: run `goodhart run` on it first")
        frame = con.sql(_period(con, weeks=weeks, by=by)).limit(top).pl()
    return frame if by == "person" else frame.drop("team")


def _period(con: duckdb.DuckDBPyConnection, *, weeks: int, by: Level) -> str:
    """The query of leaderboard_period.sql over the last `weeks` weeks, ranked (rank, then name);
    its variables set on `con`."""
    con.execute("SET VARIABLE leaderboard_weeks = ?", [weeks])
    con.execute("SET VARIABLE leaderboard_by = ?", [by])
    return f"{sql_models.load('pipeline.publish').sql('leaderboard_period')} ORDER BY rank, name"


def format_leaderboard(frame: pl.DataFrame, by: Level) -> str:
    """A plain-text table, one line per team or person."""
    if frame.is_empty():
        return "no AI usage or shipped work in the period"
    first, last = frame["first_week"].min(), frame["last_week"].max()
    header = (f"honest leaderboard, weeks {first} to {last}: AI-assisted shipped work (units: a typical "
              f"deployed change = 1; see docs/leaderboard.md)\n")
    name = "team" if by == "team" else "person"
    lines = [f"{'rank':>4}  {name:<24} {'units':>8} {'changes':>7} {'$/unit':>9} {'tokens/unit':>12} "
             f"{'waste':>6} {'token rank':>10}"]
    for row in frame.iter_rows(named=True):  # the printed rows only (at most `top`)
        cost = "-" if row["cost_per_unit"] is None else f"{row['cost_per_unit']:,.2f}"
        tokens = "-" if row["tokens_per_unit"] is None else f"{row['tokens_per_unit']:,.0f}"
        waste = "-" if row["flagged_waste_share"] is None else f"{row['flagged_waste_share']:.0%}"
        lines.append(f"{row['rank']:>4}  {str(row['name'])[:24]:<24} {row['shipped_units']:>8.1f} "
                     f"{row['ai_deployed_changes']:>7} {cost:>9} {tokens:>12} {waste:>6} {row['token_rank']:>10}")
    return header + "\n".join(lines)


# --- the finance report's section (pipeline/publish/report.py) ----------------------------------------

REPORT_FILE = "honest_leaderboard.csv"
REPORT_TEAMS = 10


def report_files(con: duckdb.DuckDBPyConnection, out_dir: Path) -> list[Path]:
    """Build report_honest_leaderboard on the report's connection (min_team_size set): the whole
    period, teams under min_team_size merged into 'other' as everywhere in the report; write
    REPORT_FILE. Nothing when the database predates shipped_work."""
    if not _has_shipped_work(con):
        return []
    con.execute(f"CREATE OR REPLACE TEMP TABLE report_honest_leaderboard AS {_period(con, weeks=ALL_WEEKS, by='team')}")
    columns = "rank, name AS team, people, shipped_units, held_units, ai_deployed_changes, " \
              "changes_of_unknown_evidence, tokens, cost_usd, cost_per_unit, tokens_per_unit, flagged_waste_share, token_rank"
    return [write_csv(con, f"SELECT {columns} FROM report_honest_leaderboard ORDER BY rank, name", out_dir / REPORT_FILE)]


def report_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]] | None:
    """The top teams for the report page (None: no shipped_work in this database)."""
    if not _has_shipped_work(con):
        return None
    relation = con.sql(f"SELECT * FROM report_honest_leaderboard ORDER BY rank, team LIMIT {REPORT_TEAMS}")
    return [dict(zip(relation.columns, row)) for row in relation.fetchall()]


def html_section(teams: list[dict[str, Any]] | None) -> str:
    """The report's honest leaderboard: teams by AI-assisted shipped work, beside cost per unit."""
    from pipeline.publish.report_html import escape, table  # the report page's escaping and tables (it imports this module)

    if teams is None:
        return ""
    out = ['\n<h2 id="honest-leaderboard">Honest leaderboard: AI-assisted work that shipped</h2>']
    if not teams:
        return out[0] + '\n<p class="note">No AI-assisted change reached production in the period.</p>\n'
    rows = [[str(t["rank"]), t["name"], f"{t['people']:,}", f"{t['shipped_units']:,.1f}", f"{t['ai_deployed_changes']:,}",
             "unknown" if t["cost_per_unit"] is None else f"${t['cost_per_unit']:,.2f}",
             "unknown" if t["flagged_waste_share"] is None else f"{t['flagged_waste_share']:.0%}", str(t["token_rank"])]
            for t in teams]
    out.append(table(["Rank", "Team", "People", "Shipped units", "AI changes deployed", "Cost per unit",
                       "Flagged waste", "Token rank"], rows, 2))
    note = ("A unit is a deployed change of the company’s typical size, weighted by the evidence that AI fed it: "
            "lines add up, so splitting work into tiny changes earns nothing, and a week flagged for gaming is held "
            "back until judged legitimate. The token rank is where the team would stand on a leaderboard of tokens "
            f"spent. Definition: docs/leaderboard.md; every team in {REPORT_FILE}.")
    out.append(f'<p class="note">{escape(note)}</p>')
    return "\n".join(out) + "\n"


def _has_shipped_work(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'shipped_work'").fetchall()[0][0])
