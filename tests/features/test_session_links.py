"""session_links: one row per session_id x change_id (docs/features.md, "session_links")."""
import pytest

from tests.features.conftest import build, insert, rows

COLUMNS = ("session_id", "change_id", "method", "methods", "confidence", "lag_hours", "weight")


def links(con, *columns):
    return {(r["session_id"], r["change_id"]): {c: r[c] for c in columns}
            for r in rows(con, "session_links")}


def session(con, session_id="s1", user_id="u1", repo="repo-a", start="2026-10-05 09:00", end="2026-10-05 10:00",
            commit_sha=None):
    """A session of two prompts, `start` to `end`, in `repo`."""
    insert(con, "invocations", [
        dict(session_id=session_id, user_id=user_id, repo=repo, ts=start),
        dict(session_id=session_id, user_id=user_id, repo=repo, ts=end, commit_sha=commit_sha),
    ])


def test_explicit_session_id(con):
    session(con, "s1", user_id="u1", repo="repo-a")
    insert(con, "changes", [
        # another author and repository, not merged: only the explicit naming links it
        dict(change_id="c1", author_id="u2", repo="repo-z", merged_at=None, ai_session_ids=["s1", "s-missing"]),
    ])
    build(con, upto="session_links")
    assert rows(con, "session_links", *COLUMNS) == [dict(
        session_id="s1", change_id="c1", method="explicit_session_id", methods=["explicit_session_id"],
        confidence=1.0, lag_hours=None, weight=1.0)]  # s-missing has no session: no link


def test_explicit_commit_matches_sha_case_insensitively(con):
    session(con, "s1", user_id="u1", repo="repo-a", commit_sha="ABCDEF0123")
    insert(con, "changes", [
        dict(change_id="c1", author_id="u2", repo="repo-z", merged_at="2026-10-05 12:00",
             commit_shas=["ffff", "abcdef0123"]),
        dict(change_id="c2", author_id="u2", repo="repo-z", merged_at="2026-10-05 12:00", commit_shas=["abcdef"]),
    ])
    build(con, upto="session_links")
    assert rows(con, "session_links", *COLUMNS) == [dict(
        session_id="s1", change_id="c1", method="explicit_commit", methods=["explicit_commit"],
        confidence=1.0, lag_hours=2.0, weight=1.0)]  # merged 12:00, session ended 10:00


def test_strongest_method_wins_and_all_are_listed(con):
    session(con, "s1", user_id="u1", repo="repo-a", commit_sha="c0ffee")
    insert(con, "changes", [
        dict(change_id="all", author_id="u1", repo="repo-a", merged_at="2026-10-05 16:00",
             ai_session_ids=["s1"], commit_shas=["C0FFEE"]),
        dict(change_id="commit+inferred", author_id="u1", repo="repo-a", merged_at="2026-10-05 16:00",
             commit_shas=["c0ffee"]),
    ])
    build(con, upto="session_links")
    assert links(con, "method", "methods", "confidence", "weight") == {
        ("s1", "all"): dict(method="explicit_session_id",
                            methods=["explicit_commit", "explicit_session_id", "inferred_author_repo_window"],
                            confidence=1.0, weight=0.5),
        ("s1", "commit+inferred"): dict(method="explicit_commit",
                                        methods=["explicit_commit", "inferred_author_repo_window"],
                                        confidence=1.0, weight=0.5),
    }


def test_inferred_window_confidence_and_weights(con):
    # session 09:00-10:00 on Monday in repo-a by u1; window 120 h
    session(con, "s1", user_id="u1", repo="repo-a")
    insert(con, "changes", [
        dict(change_id="during", merged_at="2026-10-05 09:30"),       # lag -0.5 h -> clamped to 0: 0.7
        dict(change_id="day-after", merged_at="2026-10-06 16:00"),    # lag 30 h: 0.3 + 0.4 x (1 - 30/120) = 0.6
        dict(change_id="window-end", merged_at="2026-10-10 10:00"),   # lag 120 h: 0.3 + 0.4 x 0 = 0.3
        dict(change_id="just-outside", merged_at="2026-10-10 10:01"),  # lag 120 h 1 min: no link
        dict(change_id="before-start", merged_at="2026-10-05 08:59"),  # merged before the session: no link
        dict(change_id="other-repo", repo="repo-b", merged_at="2026-10-05 12:00"),
        dict(change_id="other-author", author_id="u2", merged_at="2026-10-05 12:00"),
        dict(change_id="not-merged", merged_at=None),
    ])
    build(con, upto="session_links")
    got = links(con, "method", "confidence", "lag_hours", "weight", "credit", "evidence")
    assert set(got) == {("s1", "during"), ("s1", "day-after"), ("s1", "window-end")}
    assert {k: v["method"] for k, v in got.items()} == dict.fromkeys(got, "inferred_author_repo_window")
    # the first change merged in the window takes the session's work (credit unknown: no lines
    # reported), the later ones get none, so all the session's weight goes to "during"
    earlier = "time window only: an earlier change of the author's in the repository took the session's work"
    expected = {"during": (0.7, -0.5, 1.0, None, "time window only: the source reports no lines kept (unknown)"),
                "day-after": (0.6, 30.0, 0.0, 0.0, earlier), "window-end": (0.3, 120.0, 0.0, 0.0, earlier)}
    for change_id, (confidence, lag, weight, credit, evidence) in expected.items():
        row = got[("s1", change_id)]
        assert row["confidence"] == pytest.approx(confidence)
        assert row["lag_hours"] == pytest.approx(lag)
        assert row["weight"] == pytest.approx(weight)
        assert row["credit"] == credit
        assert row["evidence"] == evidence

    # a shorter window moves the confidence and drops links beyond it
    build(con, upto="session_links", link_window_hours=60.0)
    got = links(con, "confidence")
    assert set(got) == {("s1", "during"), ("s1", "day-after")}
    assert got[("s1", "day-after")]["confidence"] == pytest.approx(0.3 + 0.4 * (1 - 30 / 60))


def test_inferred_matches_any_repository_of_the_session(con):
    insert(con, "invocations", [dict(ts="2026-10-05 09:00", repo="repo-a"), dict(ts="2026-10-05 09:10", repo="repo-b")])
    insert(con, "changes", [dict(change_id="in-b", repo="repo-b", merged_at="2026-10-05 09:10")])  # lag 0: 0.7
    build(con, upto="session_links")
    assert rows(con, "session_links", "change_id", "method", "confidence", "lag_hours") == [
        dict(change_id="in-b", method="inferred_author_repo_window", confidence=pytest.approx(0.7), lag_hours=0.0)]


def test_inferred_needs_a_repository_named_by_the_session(con):
    insert(con, "invocations", [dict(session_id="no-repo", ts="2026-10-05 09:00", repo=None)])
    insert(con, "token_usage", [dict(session_id="req-only", ts="2026-10-05 09:00")])
    insert(con, "changes", [dict(change_id="c1", merged_at="2026-10-05 09:30")])
    build(con, upto="session_links")
    assert rows(con, "session_links") == []


def test_a_session_linked_on_evidence_gets_no_credit_from_a_window(con):
    session(con, "s1", user_id="u1", repo="repo-a")
    insert(con, "changes", [
        dict(change_id="named", author_id="u2", repo="repo-z", ai_session_ids=["s1"], merged_at="2026-10-05 11:00"),
        dict(change_id="inferred", merged_at="2026-10-06 16:00"),
    ])
    build(con, upto="session_links")
    got = links(con, "weight", "credit", "evidence")
    assert got[("s1", "named")] == dict(weight=1.0, credit=1.0, evidence="the change names the session")
    assert got[("s1", "inferred")] == dict(
        weight=0.0, credit=0.0, evidence="time window only: the session is linked on evidence to another change")


def test_two_explicit_links_split_the_session_by_confidence(con):
    session(con, "s1", user_id="u1", repo="repo-a", commit_sha="c0ffee")
    insert(con, "changes", [
        dict(change_id="named", author_id="u2", repo="repo-z", ai_session_ids=["s1"], merged_at="2026-10-05 11:00"),
        dict(change_id="merged-commit", author_id="u2", repo="repo-z", commit_shas=["c0ffee"],
             merged_at="2026-10-06 16:00"),
    ])
    build(con, upto="session_links")
    assert {k: v["weight"] for k, v in links(con, "weight").items()} == {
        ("s1", "named"): 0.5, ("s1", "merged-commit"): 0.5}


def test_review_work_is_credited_through_the_reviewed_change(con):
    # u2's session 09:00-10:00 on Monday in repo-a; u2 reviews u1's changes (review window 1 h)
    session(con, "s1", user_id="u2", repo="repo-a")
    session(con, "elsewhere", user_id="u2", repo="repo-b")
    insert(con, "changes", [dict(change_id=c, author_id="u1", merged_at="2026-10-08 12:00")
                            for c in ("named", "feedback", "changes-asked", "bare", "unknown", "late")])
    insert(con, "reviews", [
        dict(change_id="named", submitted_at="2026-10-09 12:00", ai_session_ids=["s1"]),  # named: at any time
        dict(change_id="feedback", submitted_at="2026-10-05 10:40", state="commented", comments=4),
        dict(change_id="changes-asked", submitted_at="2026-10-05 11:00", state="changes_requested", comments=0),
        dict(change_id="bare", submitted_at="2026-10-05 11:00", state="approved", comments=0),
        dict(change_id="unknown", submitted_at="2026-10-05 11:00", state="approved", comments=None),
        dict(change_id="late", submitted_at="2026-10-05 11:01", state="commented", comments=2),  # 1 h 1 min after
    ])
    build(con, upto="session_links")
    assert links(con, "method", "credit", "evidence") == {
        ("s1", "named"): dict(method="explicit_review", credit=1.0,
                              evidence="a review of the change names the session"),
        ("s1", "feedback"): dict(method="inferred_review_window", credit=1.0,
                                 evidence="time window only: the person reviewed the change with feedback"),
        ("s1", "changes-asked"): dict(method="inferred_review_window", credit=1.0,
                                      evidence="time window only: the person reviewed the change with feedback"),
        ("s1", "bare"): dict(method="inferred_review_window", credit=0.0,
                             evidence="time window only: the person approved the change without feedback"),
        ("s1", "unknown"): dict(method="inferred_review_window", credit=None,
                                evidence="time window only: the person reviewed the change (comments not reported)"),
    }  # "elsewhere" worked in another repository; "late" was reviewed after the window


def test_a_session_that_wrote_code_in_the_repository_is_not_credited_as_the_review(con):
    insert(con, "invocations", [
        dict(session_id="wrote", user_id="u2", repo="repo-a", ts="2026-10-05 09:00", lines_accepted=30),
        dict(session_id="wrote", user_id="u2", repo="repo-a", ts="2026-10-05 10:00"),
    ])
    insert(con, "changes", [dict(change_id="c1", author_id="u1", merged_at="2026-10-08 12:00")])
    insert(con, "reviews", [dict(change_id="c1", submitted_at="2026-10-05 11:00", state="commented", comments=3)])
    build(con, upto="session_links")
    assert links(con, "method", "credit", "evidence") == {("wrote", "c1"): dict(
        method="inferred_review_window", credit=0.0,
        evidence="time window only: the session wrote code in the repository, so it was not the review")}


def test_a_change_that_declares_its_sessions_gives_no_window_credit_to_others(con):
    # u1 works in repo-a on Monday morning; three of u1's changes there merge the same afternoon
    prompts = [dict(session_id=s, user_id="u1", repo="repo-a", ts=ts, lines_accepted=lines, commit_sha=sha)
               for s, ts, lines, sha in (
                   ("committer", "2026-10-05 09:00", 20, None), ("committer", "2026-10-05 10:00", None, "aaaa"),
                   ("hand-coder", "2026-10-05 09:00", 10, None), ("hand-coder", "2026-10-05 10:00", None, None),
                   ("named", "2026-10-05 09:00", 5, None), ("agent", "2026-10-05 09:00", 5, "bbbb"))]
    insert(con, "invocations", prompts)
    insert(con, "changes", [
        dict(change_id="names-other", merged_at="2026-10-05 11:00", ai_session_ids=["named"], lines_added=40),
        dict(change_id="lists-other", merged_at="2026-10-05 12:00", commit_shas=["BBBB", "cccc"], lines_added=40),
        dict(change_id="undeclared", merged_at="2026-10-05 13:00", lines_added=40),
    ])
    build(con, upto="session_links")
    got = links(con, "credit", "evidence")
    names = "time window only: the change names its AI sessions, not this one"
    assert got[("committer", "names-other")] == got[("hand-coder", "names-other")] == dict(credit=0.0, evidence=names)
    # the commit it made is not among the change's: its work is not in there
    assert got[("committer", "lists-other")] == dict(
        credit=0.0, evidence="time window only: the change lists every commit it merged, none of the commits this session made")
    # a session that committed nothing may have fed it by hand: the first change not excluded takes its work
    assert got[("hand-coder", "lists-other")] == dict(credit=0.25, evidence="10 lines kept in the repository, of a 40-line change")
    assert got[("hand-coder", "undeclared")]["credit"] == 0.0
    assert got[("committer", "undeclared")] == dict(credit=0.5, evidence="20 lines kept in the repository, of a 40-line change")


@pytest.mark.parametrize("commit_shas, scope, credit", [
    (["1111", "2222", "3333"], None, 0.0),   # every commit it merged, none the session's: not its work
    (["1111", "2222", "3333"], "all", 0.0),
    (["1111"], None, 0.5),                   # one commit: a squash may have folded the session's commit into it
    (["1111", "2222"], None, 0.5),           # two: may be the merge commit and the branch head, whatever it claims
    (["1111", "2222", "3333"], "heads", 0.5),  # the merge commit and branch heads only: absence proves nothing
    ([], None, 0.5),                    # no commits reported
])
def test_a_complete_commit_list_without_the_sessions_commits_gives_no_window_credit(con, commit_shas, scope, credit):
    insert(con, "invocations", [
        dict(session_id="s1", user_id="u1", repo="repo-a", ts="2026-10-05 09:00", lines_accepted=20),
        dict(session_id="s1", user_id="u1", repo="repo-a", ts="2026-10-05 10:00", commit_sha="aaaa"),
    ])
    insert(con, "changes", [dict(change_id="c1", author_id="u1", merged_at="2026-10-05 12:00", lines_added=40,
                                 commit_shas=commit_shas, commit_shas_scope=scope)])
    build(con, upto="session_links")
    evidence = ("time window only: the change lists every commit it merged, none of the commits this session made"
                if credit == 0 else "20 lines kept in the repository, of a 40-line change")
    assert links(con, "credit", "evidence") == {("s1", "c1"): dict(credit=credit, evidence=evidence)}


def test_a_review_that_names_its_sessions_gives_no_window_credit_to_others(con):
    # u2 runs two sessions in repo-a, then reviews u1's change with comments; the review names s-named
    for session_id in ("s-named", "s-other"):
        insert(con, "invocations", [
            dict(session_id=session_id, user_id="u2", repo="repo-a", ts="2026-10-05 09:00"),
            dict(session_id=session_id, user_id="u2", repo="repo-a", ts="2026-10-05 10:00"),
        ])
    insert(con, "changes", [dict(change_id="c1", author_id="u1", merged_at="2026-10-08 12:00"),
                            dict(change_id="c2", author_id="u1", merged_at="2026-10-08 12:00")])
    insert(con, "reviews", [
        dict(change_id="c1", reviewer_id="u2", submitted_at="2026-10-05 10:30", state="commented", comments=3,
             ai_session_ids=["s-named"]),
        # c2: one review names a session we do not hold, another names none: s-other may be it
        dict(change_id="c2", reviewer_id="u2", submitted_at="2026-10-05 10:30", state="commented", comments=3,
             ai_session_ids=["s-unknown"]),
    ])
    build(con, upto="session_links")
    assert links(con, "method", "credit", "evidence") == {
        ("s-named", "c1"): dict(method="explicit_review", credit=1.0, evidence="a review of the change names the session"),
        ("s-other", "c1"): dict(method="inferred_review_window", credit=0.0,
                                evidence="time window only: the person's review names its AI sessions, not this one"),
        ("s-named", "c2"): dict(method="inferred_review_window", credit=1.0,
                                evidence="time window only: the person reviewed the change with feedback"),
        ("s-other", "c2"): dict(method="inferred_review_window", credit=1.0,
                                evidence="time window only: the person reviewed the change with feedback"),
    }


def test_a_change_of_unreported_size_gives_unknown_window_credit(con):
    insert(con, "invocations", [dict(session_id="s1", repo="repo-a", ts="2026-10-05 09:00", lines_accepted=12)])
    insert(con, "changes", [dict(change_id="c1", merged_at="2026-10-05 11:00", lines_added=None, lines_deleted=None)])
    build(con, upto="session_links")
    assert links(con, "credit", "evidence") == {("s1", "c1"): dict(
        credit=None, evidence="time window only: 12 lines kept in the repository; the change's size is not reported (unknown)")}


def test_a_session_of_unreported_lines_is_credited_by_the_ai_tools_own_code_tracking(con):
    insert(con, "invocations", [dict(session_id="s1", user_id="u1", repo="repo-a", ts="2026-10-05 09:00"),
                                dict(session_id="s2", user_id="u1", repo="repo-a", ts="2026-10-08 09:00")])
    insert(con, "changes", [
        dict(change_id="tracked", author_id="u1", merged_at="2026-10-05 11:00", commit_shas=["ABC1234"], lines_added=60),
        dict(change_id="untracked", author_id="u1", merged_at="2026-10-08 11:00", commit_shas=["def5678"], lines_added=60),
    ])
    insert(con, "ai_commits", [
        dict(commit_sha="abc1234", user_id="u1", ai_lines_added=30, tool="cursor"),
        dict(commit_sha="def5678", user_id="u2", ai_lines_added=60, tool="cursor"),  # not the author's
    ])
    build(con, upto="session_links")
    got = links(con, "credit", "evidence")
    assert got[("s1", "tracked")] == dict(credit=0.5, evidence=(
        "time window only: the source reports no lines kept; the AI tool's code tracking counts 30 AI-written "
        "lines of the author's in this 60-line change"))
    assert got[("s2", "untracked")] == dict(credit=None, evidence="time window only: the source reports no lines kept (unknown)")


def test_a_window_session_is_credited_only_for_lines_the_declared_sessions_left(con):
    # "agent" commits in repo-a and both changes merge its commit; "helper" kept 30 lines there too
    insert(con, "invocations", [
        dict(session_id="agent", user_id="u1", repo="repo-a", ts="2026-10-05 09:00", lines_accepted=60, commit_sha="aaaa"),
        dict(session_id="helper", user_id="u1", repo="repo-a", ts="2026-10-05 09:30", lines_accepted=30),
        dict(session_id="eager", user_id="u1", repo="repo-a", ts="2026-10-05 09:45", lines_accepted=50),
        dict(session_id="unreported", user_id="u1", repo="repo-a", ts="2026-10-05 09:50"),  # lines not reported
    ])
    insert(con, "changes", [
        # 60 added lines, all the agent's 30 (its 60 shared by two changes) plus 30: room for the helper's 30
        dict(change_id="room", author_id="u1", merged_at="2026-10-05 12:00", lines_added=60, lines_deleted=40,
             commit_shas=["aaaa", "h1"]),
        # 30 added lines: the agent's share already wrote all of them
        dict(change_id="written", author_id="u1", merged_at="2026-10-05 11:00", lines_added=30, commit_shas=["aaaa", "h2"]),
    ])
    build(con, upto="session_links")
    got = links(con, "credit", "evidence")
    # the earlier change, written by the sessions it declares, does not take the helper's work
    written = "time window only: the sessions the change declares kept 30 lines, all of its 30 added lines"
    assert got[("helper", "written")] == dict(credit=0.0, evidence=written)
    # nothing left to have written, whatever the session kept: 0, not unknown
    assert got[("unreported", "written")] == dict(credit=0.0, evidence=written)
    assert got[("helper", "room")] == dict(credit=0.3, evidence="30 lines kept in the repository, of a 100-line change")
    # 50 kept, but only 30 of the change's added lines are left to have written
    assert got[("eager", "room")] == dict(credit=0.3, evidence=(
        "50 lines kept in the repository, of a 100-line change; the sessions it declares kept 30 of its 60 added lines"))
