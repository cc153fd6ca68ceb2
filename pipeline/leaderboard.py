"""The honest leaderboard (`goodhart leaderboard`): AI-assisted shipped work per team, or per
person on request, over the last weeks of a published run. The measure is `shipped_work`
(pipeline/sql/shipped_work.sql); docs/leaderboard.md defines it for managers."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl

from pipeline.storage import connect

Level = Literal["team", "person"]

# Over the period: the teams' (or people's) sums, ranked by shipped work; the token rank beside it
# shows what a token leaderboard would have said.
LEADERBOARD_SQL = """
WITH period AS (
    SELECT * FROM shipped_work
    WHERE week_start > (SELECT max(week_start) FROM shipped_work) - to_days(CAST($weeks * 7 AS INTEGER))
),
grouped AS (
    SELECT {key} AS name, any_value(team) AS team,
           count(DISTINCT user_id) AS people,
           sum(shipped_units) AS shipped_units,
           sum(held_units) AS held_units,
           sum(ai_deployed_changes) AS ai_deployed_changes,
           sum(changes_of_unknown_evidence) AS changes_of_unknown_evidence,
           sum(tokens) AS tokens,
           sum(cost_usd) AS cost_usd,
           sum(cost_usd) / nullif(sum(shipped_units + held_units), 0) AS cost_per_unit,
           sum(tokens) / nullif(sum(shipped_units + held_units), 0) AS tokens_per_unit,
           sum(wasted_cost_usd) / nullif(sum(cost_usd), 0) AS flagged_waste_share,
           min(week_start) AS first_week, max(week_start) AS last_week
    FROM period
    GROUP BY {key}
)
SELECT rank() OVER (ORDER BY shipped_units DESC) AS rank,
       rank() OVER (ORDER BY tokens DESC) AS token_rank,
       *
FROM grouped
ORDER BY rank, name
LIMIT $top
"""


class LeaderboardError(ValueError):
    """A database without the leaderboard's table (not a published run, or one from before it)."""


def leaderboard(db_path: Path, *, weeks: int = 4, by: Level = "team", top: int = 20) -> pl.DataFrame:
    """The leaderboard over the last `weeks` weeks of the run in `db_path`: rank, token_rank,
    name, shipped_units, cost and tokens per unit, flagged waste share. People are named only with
    `by="person"`."""
    key = {"team": "team", "person": "user_id"}[by]
    with connect(db_path, read_only=True) as con:
        has_table = con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'shipped_work'").fetchall()[0][0]
        if not has_table:
            raise LeaderboardError(f"{db_path} has no shipped_work table: run `goodhart run` on it first")
        frame = con.sql(LEADERBOARD_SQL.format(key=key), params={"weeks": weeks, "top": top}).pl()
    return frame if by == "person" else frame.drop("team")


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
