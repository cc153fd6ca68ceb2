"""The finance report of wasted AI compute: a static HTML page and CSVs from a run's database.

    summary = write_report(Path("goodhart.duckdb"), Path("report/"))

opens the database read-only and writes into `out_dir`:

    report.html            self-contained page (inline CSS and SVG, no network needed)
    summary.csv            headline numbers, the run, the period, usage with no price
    wasted_by_week.csv     per ISO week: spend, wasted cost, share, completeness, change, trend
    wasted_by_team.csv     per team (teams under `min_team_size` people merged into "other")
    wasted_by_model.csv    per model (each user-week's wasted cost split by its spend per model)
    focus_wasted_cost.csv  FinOps FOCUS 1.2 / 1.3 Cost and Usage rows, one per (team, week, model)
    wasted_by_person.csv   per person, only with include_people=True
    honest_leaderboard.csv per team: AI-assisted shipped work ranked (pipeline/publish/leaderboard.py)

Files are readable by their owner only, or their group too when the database is (pipeline.ops.permissions).

All numbers are computed set-wise in DuckDB (pipeline/publish/sql/report_*.sql) into temporary tables
of the read-only connection; Python only draws the few aggregate rows. Money is rounded to the
cent and tokens to the token by largest remainder, so every file adds up to the same database
totals exactly (tests/pipeline/publish/test_report_focus.py). The finance reader's guide, with what each
FOCUS column holds, is docs/finance.md.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from pipeline import sql_models
from pipeline.ops import permissions
from pipeline.publish import leaderboard, root_cause
from pipeline.publish.report_html import PEOPLE_FILE, TOP_PEOPLE, render_html
from pipeline.storage import connect, write_csv


@dataclass(frozen=True)
class ReportSummary:
    out_dir: Path
    files: tuple[Path, ...]
    total_cost_usd: float
    wasted_cost_usd: float
    weeks: int
    teams: int


class ReportError(ValueError):
    """The database cannot be reported on (not a Goodhart database, or no completed run)."""


def write_report(
    db_path: Path, out_dir: Path, *, min_team_size: int = 5, include_people: bool = False,
    group_readable: bool | None = None,
) -> ReportSummary:
    """Write the finance report of the run published in `db_path` into `out_dir` (created if needed).

    Teams with fewer than `min_team_size` distinct people are reported as "other" everywhere;
    people are named (wasted_by_person.csv, a top-people table) only when `include_people`.
    Files are the owner's alone, or the group's too when `group_readable` (None: as the database).
    """
    db_path, out_dir = Path(db_path), Path(out_dir)
    if isinstance(min_team_size, bool) or not isinstance(min_team_size, int) or min_team_size < 1:
        raise ValueError(f"min_team_size must be a positive integer, not {min_team_size!r}")
    if not db_path.is_file():
        raise FileNotFoundError(f"no database file at {db_path}")
    modes = permissions.for_output(db_path, group_readable)
    permissions.make_dir(out_dir, modes)

    with connect(db_path, read_only=True) as con, permissions.creating(modes):
        _check_tables(con)
        _build_tables(con, min_team_size=min_team_size, include_people=include_people, db_name=db_path.name)
        files = [_write_csv(con, table, out_dir / name) for name, table in _csv_files(include_people)]
        files += root_cause.report_files(con, out_dir) + leaderboard.report_files(con, out_dir)
        data = _report_data(con, include_people=include_people) | {
            "root_cause": root_cause.report_rows(con), "leaderboard": leaderboard.report_rows(con)}

    stale_people = out_dir / PEOPLE_FILE
    if not include_people:
        # an earlier run with include_people must not leave names behind in this folder
        stale_people.unlink(missing_ok=True)

    page = out_dir / "report.html"
    with permissions.creating(modes):
        page.write_text(render_html(data, db_name=db_path.name), encoding="utf-8")
    for written in (page, *files):  # a file rewritten keeps its earlier mode otherwise
        permissions.restrict(written, modes)
    summary = data["summary"]
    return ReportSummary(
        out_dir=out_dir,
        files=(page, *files),
        total_cost_usd=float(summary["total_cost_usd"]),
        wasted_cost_usd=float(summary["wasted_cost_usd"]),
        weeks=int(summary["weeks"]),
        teams=int(summary["teams"]),
    )


# the report's temporary tables are the models of pipeline/publish/sql/ tagged `report` (and
# `report_people` with include_people), built in the order their references give
_PEOPLE_TABLE = "report_wasted_by_person"

# row order of each table when written or drawn
_ORDER = {
    "report_summary": "run_id",
    "report_wasted_by_week": "week_start",
    "report_wasted_by_team": "wasted_cost_usd DESC, team",
    "report_wasted_by_model": "wasted_cost_usd DESC, model",
    "report_focus_wasted_cost": "ChargePeriodStart, SubAccountName, SkuId",
    "report_wasted_by_person": "wasted_cost_usd DESC, user_id",
    "report_flags_without_waste": "user_weeks DESC, cause, detector",
}

_REQUIRED = {
    "user_week_scores": {
        "run_id", "user_id", "team", "org", "week_start", "tokens", "cost_usd", "flagged", "detectors", "wasted_cost_usd",
    },
    "token_usage": {"user_id", "ts", "model", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd"},
}


def _csv_files(include_people: bool) -> list[tuple[str, str]]:
    files = [
        ("summary.csv", "report_summary"),
        ("wasted_by_week.csv", "report_wasted_by_week"),
        ("wasted_by_team.csv", "report_wasted_by_team"),
        ("wasted_by_model.csv", "report_wasted_by_model"),
        ("focus_wasted_cost.csv", "report_focus_wasted_cost"),
    ]
    if include_people:
        files.append((PEOPLE_FILE, _PEOPLE_TABLE))
    return files


def _check_tables(con: duckdb.DuckDBPyConnection) -> None:
    present = con.sql(
        "SELECT table_name, list(column_name) FROM information_schema.columns "
        "WHERE table_schema = 'main' GROUP BY table_name"
    ).fetchall()
    columns = {name: set(cols) for name, cols in present}
    for table, needed in _REQUIRED.items():
        if table not in columns:
            raise ReportError(f"no {table} table: not a Goodhart database, or no run has completed in it")
        missing = needed - columns[table]
        if missing:
            raise ReportError(f"{table} lacks column(s) {', '.join(sorted(missing))}")


def _build_tables(
    con: duckdb.DuckDBPyConnection, *, min_team_size: int, include_people: bool, db_name: str = ""
) -> None:
    con.execute("SET VARIABLE min_team_size = ?", [min_team_size])
    con.execute("SET VARIABLE report_account_name = ?", [f"Goodhart ({db_name})" if db_name else "Goodhart"])
    models = sql_models.load("pipeline.publish")
    models.run(con, "report")
    if include_people:
        models.run(con, "report_people")


def _write_csv(con: duckdb.DuckDBPyConnection, table: str, path: Path) -> Path:
    return write_csv(con, f"SELECT * FROM {table} ORDER BY {_ORDER[table]}", path)


def _rows(con: duckdb.DuckDBPyConnection, table: str, limit: int | None = None) -> list[dict[str, Any]]:
    relation = con.sql(f"SELECT * FROM {table} ORDER BY {_ORDER[table]}" + (f" LIMIT {int(limit)}" if limit else ""))
    names = relation.columns
    return [dict(zip(names, row)) for row in relation.fetchall()]


def _report_data(con: duckdb.DuckDBPyConnection, *, include_people: bool) -> dict[str, Any]:
    (summary,) = _rows(con, "report_summary")
    run_rows = []
    if summary["run_id"] and "," not in summary["run_id"]:
        has_runs = con.sql(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = 'runs'"
        ).fetchall()[0][0]
        if has_runs:
            run_rows = con.sql(
                "SELECT started_at, ended_at, status, code_version, CAST(config AS VARCHAR) FROM runs WHERE run_id = ?",
                params=[summary["run_id"]],
            ).fetchall()
    run = dict(zip(("started_at", "ended_at", "status", "code_version", "config"), run_rows[0])) if run_rows else None
    return {
        "summary": summary,
        "run": run,
        "weeks": _rows(con, "report_wasted_by_week"),
        "teams": _rows(con, "report_wasted_by_team"),
        "models": _rows(con, "report_wasted_by_model"),
        "flags_without_waste": _rows(con, "report_flags_without_waste"),
        "rules": _user_week_rules(run["config"] if run else None),
        "people": _rows(con, _PEOPLE_TABLE, limit=TOP_PEOPLE) if include_people else None,
        "files": [name for name, _ in _csv_files(include_people)],
    }


def _user_week_rules(config: str | None) -> dict[str, dict[str, str]]:
    """The run's user-week rules by detector name ('rule:<name>'): description and wasted_cost expression.

    From runs.config, the run's effective settings; empty when the run recorded none."""
    try:
        rules = json.loads(config or "{}")["detectors"]["rules"]
        return {
            f"rule:{r['name']}": {"description": str(r.get("description") or ""), "wasted_cost": str(r.get("wasted_cost") or "")}
            for r in rules
            if r.get("level") == "user_week" and r.get("name")
        }
    except (ValueError, KeyError, TypeError):
        return {}
