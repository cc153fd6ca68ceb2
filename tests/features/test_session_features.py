"""session_features: one row per session_id (docs/features.md, "session_features")."""
import math

import pytest

from tests.features.conftest import build, by, insert, one, rows


def test_all_session_columns_carried_over(con):
    insert(con, "token_usage", [dict(ts="2026-10-05 09:00", input_tokens=3)])
    build(con, upto="session_features")
    session = one(con, "sessions")
    features = one(con, "session_features")
    assert {k: features[k] for k in session} == session


def test_outcome_of_linked_changes(con):
    insert(con, "invocations", [dict(session_id="s1", ts="2026-10-05 09:00", repo="repo-a", lines_accepted=12),
                                dict(session_id="idle", ts="2026-10-05 09:00", repo="repo-q")])
    insert(con, "changes", [
        # each names the session (a window link would yield to these: evidence places the work)
        dict(change_id="c-shipped", merged_at="2026-10-05 12:00", ai_session_ids=["s1"]),
        dict(change_id="c-merged", merged_at="2026-10-06 12:00", ai_session_ids=["s1"]),
        dict(change_id="c-open", merged_at=None, author_id="u2", ai_session_ids=["s1"]),  # not merged
        dict(change_id="c-rolled-back", merged_at="2026-10-05 13:00", ai_session_ids=["s1"]),  # deploy rolled back
    ])
    insert(con, "deployments", [
        dict(deployed_at="2026-10-05 15:00", status="success", change_ids=["c-shipped"]),
        dict(deployed_at="2026-10-05 16:00", status="rolled_back", change_ids=["c-rolled-back"]),
    ])
    build(con, upto="session_features")
    assert by(con, "session_features", "session_id", "linked_change_ids", "linked_changes", "merged_changes",
              "deployed_changes", "deployed") == {
        "s1": dict(linked_change_ids=["c-merged", "c-open", "c-rolled-back", "c-shipped"], linked_changes=4,
                   merged_changes=3, deployed_changes=1, deployed=True),
        "idle": dict(linked_change_ids=[], linked_changes=0, merged_changes=0, deployed_changes=0, deployed=False),
    }


@pytest.mark.parametrize("lines, linked, deployed", [
    (12, ["c-shipped"], True),   # kept code in the repository: the window link is credited
    (0, [], False),              # kept no code: a time window alone is no evidence
    (None, ["c-shipped"], None),  # the source reports no lines: unknown, not "nothing shipped"
])
def test_a_window_link_counts_only_on_evidence_of_code_kept(con, lines, linked, deployed):
    insert(con, "invocations", [dict(session_id="s1", ts="2026-10-05 09:00", repo="repo-a", lines_accepted=lines)])
    insert(con, "changes", [dict(change_id="c-shipped", merged_at="2026-10-05 12:00")])
    insert(con, "deployments", [dict(deployed_at="2026-10-05 15:00", status="success", change_ids=["c-shipped"])])
    build(con, upto="session_features")
    assert by(con, "session_features", "session_id", "linked_change_ids", "deployed") == {
        "s1": dict(linked_change_ids=linked, deployed=deployed)}


def test_a_session_whose_source_names_no_repository(con):
    # the source has no repo column: no window can link its sessions, so one that kept code (or
    # may have) and that no change names is of unknown outcome, not unshipped
    unreported = dict(ts="2026-10-05 09:00", repo_unreported=True)
    insert(con, "invocations", [
        dict(session_id="kept", lines_accepted=12, **unreported),
        dict(session_id="lines-unknown", **unreported),
        dict(session_id="kept-nothing", lines_accepted=0, **unreported),
        dict(session_id="named", lines_accepted=12, **unreported),
        dict(session_id="no-repository", ts="2026-10-05 09:00", lines_accepted=0),  # reported: none
    ])
    insert(con, "changes", [dict(change_id="c-shipped", merged_at="2026-10-05 12:00", ai_session_ids=["named"])])
    insert(con, "deployments", [dict(deployed_at="2026-10-05 15:00", status="success", change_ids=["c-shipped"])])
    build(con, upto="session_features")
    assert by(con, "session_features", "session_id", "repo_unreported", "deployed", "unmerged", "unknown_outcome",
              "no_repo_prompt_share") == {
        "kept": dict(repo_unreported=True, deployed=None, unmerged=False, unknown_outcome=True, no_repo_prompt_share=None),
        "lines-unknown": dict(repo_unreported=True, deployed=None, unmerged=False, unknown_outcome=True,
                              no_repo_prompt_share=None),
        "kept-nothing": dict(repo_unreported=True, deployed=False, unmerged=True, unknown_outcome=False,
                             no_repo_prompt_share=None),
        "named": dict(repo_unreported=True, deployed=True, unmerged=False, unknown_outcome=False, no_repo_prompt_share=None),
        "no-repository": dict(repo_unreported=False, deployed=False, unmerged=True, unknown_outcome=False,
                              no_repo_prompt_share=1.0),
    }


def test_repeat_shares_and_longest_near_run(con):
    insert(con, "invocations", [
        dict(ts="2026-10-05 09:00", prompt_fingerprint="X", prompt_simhash=0),
        dict(ts="2026-10-05 09:01", prompt_fingerprint="Y", prompt_simhash=0b1),     # near previous
        dict(ts="2026-10-05 09:02", prompt_fingerprint="Z", prompt_simhash=0b11),    # near previous
        dict(ts="2026-10-05 09:03", prompt_fingerprint="W", prompt_simhash=0xFF00),  # new
        dict(ts="2026-10-05 09:04", prompt_fingerprint="X", prompt_simhash=0),       # exact repeat of the 1st
        dict(ts="2026-10-05 09:05", prompt_fingerprint="V", prompt_simhash=0xFF01),  # near the 4th, not previous
        dict(session_id="plain", ts="2026-10-05 09:00", prompt_simhash=0),
        dict(session_id="plain", ts="2026-10-05 09:01", prompt_simhash=0xFFFF),
    ])
    insert(con, "token_usage", [dict(session_id="no-prompts", ts="2026-10-05 09:00", input_tokens=1)])
    build(con, upto="session_features")
    got = by(con, "session_features", "session_id", "exact_repeat_share", "near_repeat_share", "longest_near_run")
    assert got["s1"] == dict(
        exact_repeat_share=pytest.approx(1 / 6),   # the 5th prompt
        near_repeat_share=pytest.approx(4 / 6),    # 2nd, 3rd, 5th, 6th
        longest_near_run=3,                        # runs: [1 2 3] [4] [5] [6]
    )
    assert got["plain"] == dict(exact_repeat_share=0.0, near_repeat_share=0.0, longest_near_run=1)
    assert got["no-prompts"] == dict(exact_repeat_share=0.0, near_repeat_share=0.0, longest_near_run=0)


def test_gap_cadence(con):
    insert(con, "invocations", [
        # perfectly regular: gaps 60 60 60 -> cv 0
        *(dict(session_id="script", ts=f"2026-10-05 09:0{m}") for m in (0, 1, 2, 3)),
        # gaps 60 and 120: mean 90, sample stddev sqrt((30^2 + 30^2) / 1) = 42.43 -> cv 0.4714
        *(dict(session_id="human", ts=t) for t in ("2026-10-05 09:00", "2026-10-05 09:01", "2026-10-05 09:03")),
        # gaps 60 60 300: median 60 (the mean is 140); sample stddev sqrt((80^2 + 80^2 + 160^2) / 2) = 138.56
        *(dict(session_id="bursty", ts=t) for t in ("2026-10-05 09:00", "2026-10-05 09:01", "2026-10-05 09:02",
                                                    "2026-10-05 09:07")),
        # two prompts: one gap, no cv
        *(dict(session_id="two", ts=t) for t in ("2026-10-05 09:00", "2026-10-05 09:00:30")),
        # gaps 10 20 40 300, inserted out of order: median (20 + 40) / 2 = 30
        *(dict(session_id="four", ts=t) for t in ("2026-10-05 09:06:10", "2026-10-05 09:00:10", "2026-10-05 09:00",
                                                  "2026-10-05 09:01:10", "2026-10-05 09:00:30")),
    ])
    insert(con, "token_usage", [dict(session_id="one", ts="2026-10-05 09:00"),
                                dict(session_id="one", ts="2026-10-05 09:10")])
    insert(con, "invocations", [dict(session_id="one", ts="2026-10-05 09:05")])
    build(con, upto="session_features")
    got = by(con, "session_features", "session_id", "gap_cv", "median_gap_seconds")
    assert got["script"] == dict(gap_cv=0.0, median_gap_seconds=60.0)
    assert got["human"]["gap_cv"] == pytest.approx(math.sqrt(1800) / 90)
    assert got["human"]["median_gap_seconds"] == 90.0
    assert got["bursty"]["median_gap_seconds"] == 60.0
    assert got["bursty"]["gap_cv"] == pytest.approx(math.sqrt(19200) / 140)
    assert got["two"] == dict(gap_cv=None, median_gap_seconds=30.0)
    assert got["four"]["median_gap_seconds"] == 30.0
    assert got["one"] == dict(gap_cv=None, median_gap_seconds=None)  # requests are not prompts


def test_work_signal_ratios(con):
    insert(con, "token_usage", [
        dict(ts="2026-10-05 09:00", input_tokens=1000, output_tokens=250, cache_read_tokens=2500, cache_write_tokens=250),
        dict(ts="2026-10-05 09:01", input_tokens=1000, output_tokens=250, cache_read_tokens=500, cache_write_tokens=250),
        dict(ts="2026-10-05 09:02"),
    ])
    insert(con, "invocations", [
        dict(ts="2026-10-05 09:00", repo="repo-a", prompt_length=100, lines_accepted=12),
        dict(ts="2026-10-05 09:01", repo=None, prompt_length=50, lines_accepted=None),
    ])
    insert(con, "token_usage", [dict(session_id="req-only", ts="2026-10-05 09:00")])
    build(con, upto="session_features")
    got = by(con, "session_features", "session_id", "tokens", "tokens_per_prompt", "requests_per_prompt",
             "lines_accepted_per_ktok", "output_input_ratio", "cache_read_share", "no_repo_prompt_share",
             "mean_prompt_length")
    assert got["s1"] == dict(
        tokens=6000,                      # 2000 + 500 + 3000 + 500
        tokens_per_prompt=3000.0,         # 6000 / 2
        requests_per_prompt=1.5,          # 3 / 2
        lines_accepted_per_ktok=2.0,      # 12 / (6000 / 1000)
        output_input_ratio=0.25,          # 500 / 2000
        cache_read_share=0.5,             # 3000 / 6000
        no_repo_prompt_share=0.5,
        mean_prompt_length=75.0,
    )
    # nothing to divide by: NULL, not 0 or an error
    assert got["req-only"] == dict(
        tokens=0, tokens_per_prompt=None, requests_per_prompt=None, lines_accepted_per_ktok=None,
        output_input_ratio=None, cache_read_share=None, no_repo_prompt_share=None, mean_prompt_length=None)
    assert len(rows(con, "session_features")) == 2


def test_unshipped_session_kinds(con):
    # the kinds the week's shares and the week rules' session lists read, decided once per session
    insert(con, "invocations", [
        dict(session_id="explored", ts="2026-10-05 09:00", repo="repo-a", lines_accepted=0),
        dict(session_id="committed", ts="2026-10-05 09:00", repo="repo-a", lines_accepted=0, commit_sha="abc"),
        dict(session_id="unreported", ts="2026-10-05 09:00", repo="repo-a", lines_accepted=None),
        dict(session_id="unreported-committed", ts="2026-10-05 09:00", repo="repo-a", lines_accepted=None,
             commit_sha="def"),
        dict(session_id="shipped", ts="2026-10-05 09:00", repo="repo-a", lines_accepted=5),
        dict(session_id="no-repo", ts="2026-10-05 09:00", repo=None, lines_accepted=0),
    ])
    insert(con, "token_usage", [dict(session_id="idler", ts=f"2026-10-05 10:{m:02d}", output_tokens=10)
                                for m in range(20)])
    insert(con, "invocations", [dict(session_id="idler", ts="2026-10-05 10:00", repo="repo-a", lines_accepted=0)])
    insert(con, "changes", [dict(change_id="c1", merged_at="2026-10-05 12:00", ai_session_ids=["shipped"]),
                            dict(change_id="c2", merged_at="2026-10-05 13:00")])  # window-linked, credit by lines
    build(con, upto="session_features")
    kinds = ("unmerged", "codeless", "idle", "unknown_outcome", "unevidenced", "credited_merged_changes")
    expected = {
        "explored": (True, True, False, False, True, 0),
        "committed": (False, True, False, False, False, 0),  # may feed a change still in review
        # may have fed c2 (a window link its lines cannot credit): unknown, neither unmerged nor shipped
        "unreported": (False, False, False, True, True, 0),
        # its own commit is evidence of work (pending or shipped), so its outcome is not unknown
        "unreported-committed": (False, False, False, False, False, 0),
        "shipped": (False, False, False, False, False, 1),
        "no-repo": (True, False, False, False, True, 0),
        "idler": (True, True, True, False, True, 0),  # 20 calls of 10 output tokens, nothing kept
    }
    assert by(con, "session_features", "session_id", *kinds) == {
        session: dict(zip(kinds, values, strict=True)) for session, values in expected.items()}


def test_tiny_changes_count_linked_merged_changes_of_known_small_size(con):
    insert(con, "invocations", [dict(session_id="s1", ts="2026-10-05 09:00", repo="repo-a", lines_accepted=3)])
    insert(con, "changes", [
        dict(change_id="tiny", merged_at="2026-10-05 12:00", lines_added=3, lines_deleted=1, ai_session_ids=["s1"]),
        dict(change_id="big", merged_at="2026-10-05 12:00", lines_added=300, lines_deleted=0, ai_session_ids=["s1"]),
        dict(change_id="unsized", merged_at="2026-10-05 12:00", lines_added=None, lines_deleted=None, ai_session_ids=["s1"]),
        dict(change_id="open", merged_at=None, lines_added=2, lines_deleted=0, ai_session_ids=["s1"]),
    ])
    build(con, upto="session_features")
    # unknown size is not tiny; an open change is not merged
    assert by(con, "session_features", "session_id", "merged_changes", "tiny_changes") == {
        "s1": dict(merged_changes=3, tiny_changes=1)}


def test_code_kept_without_a_commit_is_pending_where_the_tool_reports_no_commits(con):
    # cursor reports the assistant's commits this week (one session made one); kiro reports none.
    # Each tool also has a session that kept code, fed no merged change and made no commit.
    sessions = [("cursor-commit", "cursor", 10, "abc"), ("cursor-kept", "cursor", 30, None),
                ("kiro-kept", "kiro", 30, None), ("kiro-explored", "kiro", 0, None)]
    insert(con, "token_usage", [dict(session_id=s, ts="2026-10-05 09:00", input_tokens=100, tool=tool)
                                for s, tool, _, _ in sessions])
    insert(con, "invocations", [dict(session_id=s, ts="2026-10-05 09:01", repo=f"repo-{s}", lines_accepted=lines,
                                     commit_sha=sha) for s, _, lines, sha in sessions])
    build(con, upto="session_features")
    assert by(con, "session_features", "session_id", "commits_unreported", "unmerged", "unknown_outcome") == {
        "cursor-commit": dict(commits_unreported=False, unmerged=False, unknown_outcome=False),  # pending
        "cursor-kept": dict(commits_unreported=False, unmerged=True, unknown_outcome=False),  # kept, never committed
        # kiro cannot say whether the code was committed: pending or abandoned, unknown
        "kiro-kept": dict(commits_unreported=True, unmerged=False, unknown_outcome=True),
        "kiro-explored": dict(commits_unreported=True, unmerged=True, unknown_outcome=False),  # kept nothing
    }
