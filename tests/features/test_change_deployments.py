"""change_deployments: one row per change_id (docs/features.md, "change_deployments")."""
from datetime import datetime

from tests.features.conftest import build, by, insert, rows

COLUMNS = ("deployment_attempts", "failed_deployments", "first_deployed_at", "first_deployment_id", "deployed")


def test_deployment_outcomes(con):
    insert(con, "changes", [
        dict(change_id=c, merged_at="2026-10-05 10:00")
        for c in ("failed-then-ok", "rolled-back", "never", "two-successes")
    ])
    insert(con, "deployments", [
        dict(deployment_id="d-fail", deployed_at="2026-10-05 12:00", status="failure",
             change_ids=["failed-then-ok"]),
        dict(deployment_id="d-ok", deployed_at="2026-10-06 09:00", status="success",
             change_ids=["failed-then-ok", "two-successes"]),
        dict(deployment_id="d-rb", deployed_at="2026-10-05 13:00", status="rolled_back", change_ids=["rolled-back"]),
        # earlier success listed later in the file: the earliest one is the first deployment
        dict(deployment_id="d-early", deployed_at="2026-10-05 18:00", status="success", change_ids=["two-successes"]),
        # a deployment of a change we do not know adds no row
        dict(deployment_id="d-other", deployed_at="2026-10-05 18:00", status="success", change_ids=["unknown"]),
    ])
    build(con, upto="change_deployments")
    assert by(con, "change_deployments", "change_id", *COLUMNS) == {
        "failed-then-ok": dict(deployment_attempts=2, failed_deployments=1,
                               first_deployed_at=datetime(2026, 10, 6, 9), first_deployment_id="d-ok", deployed=True),
        "rolled-back": dict(deployment_attempts=1, failed_deployments=1,
                            first_deployed_at=None, first_deployment_id=None, deployed=False),
        "never": dict(deployment_attempts=0, failed_deployments=0,
                      first_deployed_at=None, first_deployment_id=None, deployed=False),
        "two-successes": dict(deployment_attempts=2, failed_deployments=0,
                              first_deployed_at=datetime(2026, 10, 5, 18), first_deployment_id="d-early", deployed=True),
    }


def test_change_columns_lines_and_tiny(con):
    insert(con, "changes", [
        dict(change_id="ten", repo="r1", author_id="u9", merged_at="2026-10-05 10:00", lines_added=7, lines_deleted=3),
        dict(change_id="eleven", merged_at="2026-10-05 10:00", lines_added=11, lines_deleted=0),
        dict(change_id="null-lines", merged_at=None, lines_added=None, lines_deleted=None),
        dict(change_id="big", lines_added=500, lines_deleted=300),
    ])
    build(con, upto="change_deployments")
    got = by(con, "change_deployments", "change_id", "lines_changed", "is_tiny")
    assert got == {
        "ten": dict(lines_changed=10, is_tiny=True),   # 7 + 3 <= 10
        "eleven": dict(lines_changed=11, is_tiny=False),
        "null-lines": dict(lines_changed=None, is_tiny=None),  # not reported: unknown, not an empty change
        "big": dict(lines_changed=800, is_tiny=False),
    }
    assert rows(con, "SELECT change_id, repo, author_id, merged_at FROM change_deployments WHERE change_id = 'ten'") == [
        dict(change_id="ten", repo="r1", author_id="u9", merged_at=datetime(2026, 10, 5, 10))]

    build(con, upto="change_deployments", tiny_change_lines=11)
    assert by(con, "change_deployments", "change_id", "is_tiny")["eleven"] == dict(is_tiny=True)


def test_a_deployment_listing_a_change_twice_is_one_attempt(con):
    insert(con, "changes", [dict(change_id="c1", merged_at="2026-10-05 10:00")])
    insert(con, "deployments", [
        dict(deployment_id="d-fail", deployed_at="2026-10-05 11:00", status="failure", change_ids=["c1", "c1"]),
        dict(deployment_id="d-ok", deployed_at="2026-10-05 12:00", change_ids=["c1", "c1"]),
    ])
    build(con, upto="change_deployments")
    assert by(con, "change_deployments", "change_id", *COLUMNS)["c1"] == dict(
        deployment_attempts=2, failed_deployments=1, first_deployed_at=datetime(2026, 10, 5, 12),
        first_deployment_id="d-ok", deployed=True)


def test_evidenced_lines_are_kept_by_the_sessions_a_change_declares(con):
    insert(con, "invocations", [
        # "named" kept 30 lines in repo-a (and 99 elsewhere, not this change's repository)
        dict(session_id="named", repo="repo-a", ts="2026-10-05 09:00", lines_accepted=30),
        dict(session_id="named", repo="repo-b", ts="2026-10-05 09:10", lines_accepted=99),
        # "committer" kept 20 lines and made a commit that two changes merge: 10 lines each
        dict(session_id="committer", repo="repo-a", ts="2026-10-05 09:00", lines_accepted=20, commit_sha="AAAA"),
        dict(session_id="silent", repo="repo-a", ts="2026-10-05 09:00", commit_sha="bbbb"),  # lines not reported
        dict(session_id="bystander", repo="repo-a", ts="2026-10-05 09:00", lines_accepted=500),
    ])
    insert(con, "changes", [
        dict(change_id="both", ai_session_ids=["named"], commit_shas=["aaaa"]),
        dict(change_id="commit-only", commit_shas=["aaaa"]),
        dict(change_id="unreported", commit_shas=["bbbb"]),
        dict(change_id="undeclared"),
    ])
    build(con, upto="change_deployments")
    assert by(con, "change_deployments", "change_id", "evidenced_lines") == {
        "both": dict(evidenced_lines=40.0), "commit-only": dict(evidenced_lines=10.0),
        "unreported": dict(evidenced_lines=None), "undeclared": dict(evidenced_lines=None),
    }
