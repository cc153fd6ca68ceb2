"""A mixed input (Claude Code OTel, GitHub pull requests and deployments, git log, a people file with
aliases) through the whole run: identities joined, sessions linked to changes, user-weeks scored."""
from __future__ import annotations

import datetime
import shutil
from pathlib import Path

from pipeline.settings import Settings
from flows import run_local
from pipeline.storage import connect
from tests.pipeline.conftest import FIXTURES

WORLD = FIXTURES / "sources" / "end-to-end"
S1 = "1f0c7a52-0d55-4c8e-9f0e-5a1d6c1e0a01"  # named by pull request #17's AI-Session trailer
S2 = "7a3e9b10-44c2-4f0a-b1d3-2c9e8f7a6b03"  # made commit 41859f7..., merged by shop/search's merge 304ec82...
S3 = "2b9d8e63-1e66-4d9f-8a1f-6b2e7d2f1b02"  # bob: no person maps him
SEARCH_MERGE = "shop/search@304ec82604cafaa59973cbc5619f6476c6c5d0ab"


def test_mixed_sources_run_end_to_end(tmp_path: Path) -> None:
    world = tmp_path / "world"
    shutil.copytree(WORLD, world)
    db = tmp_path / "goodhart.duckdb"
    run_local(world, db, Settings())

    with connect(db, read_only=True) as con:
        assert con.sql("SELECT session_id, change_id, method FROM session_links ORDER BY ALL").fetchall() == [
            (S1, "shop/checkout#17", "explicit_session_id"),
            (S2, SEARCH_MERGE, "explicit_commit"),
        ]
        # alice is user.email / user.account_uuid in OTel, alice-gh on GitHub and Alice@Corp.Example in git
        assert con.sql(
            "SELECT user_id, team, week_start, tokens, sessions, merged_changes, deployed_changes "
            "FROM user_week_scores ORDER BY user_id"
        ).fetchall() == [
            ("alice", "payments", datetime.date(2026, 10, 5), 70_200, 2, 2, 1),
            ("bob@corp.example", "unassigned", datetime.date(2026, 10, 5), 3_200, 1, 0, 0),
        ]
        assert con.sql("SELECT session_id, linked_change_ids, deployed FROM session_scores ORDER BY session_id").fetchall() == [
            (S1, ["shop/checkout#17"], True),  # deployment 902 named #17's merge commit
            (S3, [], False),
            (S2, [SEARCH_MERGE], False),
        ]
        assert con.sql("SELECT source, dataset, identity, rows FROM unmapped_identities ORDER BY ALL").fetchall() == [
            ("claude_code_otel", "invocations", "bob@corp.example", 1),
            ("claude_code_otel", "token_usage", "bob@corp.example", 1),
        ]
        assert con.sql("SELECT count(*) FROM rejected_rows").fetchall() == [(0,)]
        counts = con.sql("SELECT (SELECT count(*) FROM token_usage), (SELECT count(*) FROM invocations)").fetchall()

    run_local(world, db, Settings())  # the same folder again: nothing new
    with connect(db, read_only=True) as con:
        assert con.sql("SELECT (SELECT count(*) FROM token_usage), (SELECT count(*) FROM invocations)").fetchall() == counts
        assert con.sql("SELECT rows_loaded, rows_rejected FROM runs ORDER BY started_at").fetchall()[-1] == (0, 0)


def test_mixed_sources_through_goodhart_run_flag_the_unshipped_usage(tmp_path: Path) -> None:
    import subprocess
    import sys

    world = tmp_path / "world"
    shutil.copytree(WORLD, world)
    db = tmp_path / "goodhart.duckdb"
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--input", str(world), "--db", str(db),
                           "--no-prefect"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "sessions:   3 scored, 1 flagged, 1 of them only as part of a flagged week" in done.stdout
    with connect(db, read_only=True) as con:
        # bob's usage fed nothing that shipped (his week, and the session the week's waste is
        # made of); alice's session reached production through #17
        assert con.sql("SELECT flag_id, detectors FROM flags ORDER BY level DESC").fetchall() == [
            ("user_week:bob@corp.example:2026-10-05", ["rule:burn_without_shipping"]),
            ("session:2b9d8e63-1e66-4d9f-8a1f-6b2e7d2f1b02", ["week_rule:burn_without_shipping"]),
        ]
        assert con.sql("SELECT user_id FROM session_scores WHERE flagged").fetchall() == [("bob@corp.example",)]
        assert con.sql("SELECT flagged FROM user_week_scores WHERE user_id = 'alice'").fetchall() == [(False,)]
