"""Analyst verdicts: recorded, kept across runs, a dismissed flag not re-raised for the same evidence."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.ops.runs import os_identity
from pipeline.settings import Settings
from flows import run_local
from pipeline.ops.verdicts import UnknownFlagError, record_verdict, verdict_precision

BOB_WEEK = "user_week:bob:2026-10-05"
NOW = datetime(2026, 10, 12, 9, 0)


def _flag(db: Path, flag_id: str) -> tuple:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            "SELECT flagged, dismissed, verdict, wasted_cost_usd > 0, starts_with(reasons, 'dismissed') "
            "FROM user_week_scores WHERE flag_id = ?", [flag_id]
        ).fetchall()[0]


def test_dismissed_flag_is_not_raised_again_for_the_same_evidence(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    assert _flag(db, BOB_WEEK) == (True, False, None, True, False)  # bob burned tokens and shipped nothing

    record_verdict(db, BOB_WEEK, "legitimate", now=NOW, note="spike investigation", analyst="ana")
    run_local(contract_example, db, Settings())

    assert _flag(db, BOB_WEEK) == (False, True, "legitimate", False, True)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql(f"SELECT count(*) FROM flags WHERE flag_id = '{BOB_WEEK}'").fetchall() == [(0,)]
        assert con.sql("SELECT verdict, note, analyst FROM verdicts").fetchall() == [("legitimate", "spike investigation", "ana")]
        reasons = con.execute("SELECT reasons FROM user_week_scores WHERE flag_id = ?", [BOB_WEEK]).fetchall()[0][0]
    assert reasons.startswith("dismissed by an analyst as legitimate on 2026-10-12 (spike investigation); same evidence:")


def test_a_verdict_records_the_os_account_beside_the_analyst(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    record_verdict(db, BOB_WEEK, "confirmed", now=NOW, analyst="ana")
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT analyst, os_user, host FROM verdicts").fetchall() == [("ana", *os_identity())]


def test_new_evidence_raises_a_dismissed_flag_again(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    record_verdict(db, BOB_WEEK, "legitimate", now=NOW)
    with duckdb.connect(str(db)) as con:  # as if other detectors had raised it when it was judged
        con.execute("UPDATE verdicts SET evidence_key = 'some_other_rule'")
    run_local(contract_example, db, Settings())
    assert _flag(db, BOB_WEEK) == (True, False, "legitimate", True, False)


def test_latest_verdict_counts_and_precision(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    record_verdict(db, BOB_WEEK, "unsure", now=NOW)
    assert verdict_precision(db).precision is None
    record_verdict(db, BOB_WEEK, "confirmed", now=datetime(2026, 10, 13))
    judged = verdict_precision(db)
    assert (judged.judged, judged.confirmed, judged.unsure, judged.precision) == (1, 1, 0, 1.0)


def test_unknown_flag_and_verdict_are_refused(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    with pytest.raises(UnknownFlagError, match="no flag"):
        record_verdict(db, "user_week:nobody:2026-10-05", "confirmed", now=NOW)
    with pytest.raises(ValueError, match="verdict must be"):
        record_verdict(db, BOB_WEEK, "maybe", now=NOW)


def _verdicts_shown(db: Path, flag_id: str) -> dict[str, str | None]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {
            table: con.execute(f"SELECT verdict FROM {table} WHERE flag_id = ?", [flag_id]).fetchall()[0][0]
            for table in ("flagged_user_weeks", "user_week_scores", "flags", "latest_verdicts")
        }


def test_a_verdict_shows_in_the_views_as_soon_as_it_is_recorded(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    record_verdict(db, BOB_WEEK, "unsure", now=NOW)
    assert set(_verdicts_shown(db, BOB_WEEK).values()) == {"unsure"}

    record_verdict(db, BOB_WEEK, "legitimate", now=datetime(2026, 10, 13), note="spike investigation")
    assert set(_verdicts_shown(db, BOB_WEEK).values()) == {"legitimate"}
    assert _flag(db, BOB_WEEK) == (True, False, "legitimate", True, False)  # still flagged until the next run

    record_verdict(db, BOB_WEEK, "confirmed", now=datetime(2026, 10, 11))  # recorded earlier: not the latest
    assert set(_verdicts_shown(db, BOB_WEEK).values()) == {"legitimate"}
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM verdicts").fetchall() == [(3,)]


def test_a_later_run_shows_the_verdict_recorded_between_runs_the_same_way(contract_example: Path, tmp_path: Path) -> None:
    db = tmp_path / "g.duckdb"
    run_local(contract_example, db, Settings())
    record_verdict(db, BOB_WEEK, "confirmed", now=NOW)
    recorded = _verdicts_shown(db, BOB_WEEK)
    run_local(contract_example, db, Settings())
    assert _verdicts_shown(db, BOB_WEEK) == recorded == dict.fromkeys(recorded, "confirmed")
