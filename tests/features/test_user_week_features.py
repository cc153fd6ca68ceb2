"""user_week_features: one row per user_id x week_start with any AI usage
(docs/features.md, "user_week_features"). Week of 2026-10-05 (Monday) to 2026-10-11 (Sunday)."""
from datetime import date

import pytest

from tests.features.conftest import build, insert, one, rows

W41, W42 = date(2026, 10, 5), date(2026, 10, 12)


def week(con, user_id="u1", week_start=W41, *columns):
    return one(con, f"SELECT * FROM user_week_features WHERE user_id = '{user_id}' AND week_start = '{week_start}'",
               *columns)


def test_session_over_the_iso_week_boundary_adds_to_both_weeks(con):
    insert(con, "people", [dict(user_id="u1", team="payments", org="eng")])
    # Sunday 23:50 -> Monday 00:20 UTC, one session in repo-a
    insert(con, "token_usage", [
        dict(session_id="late", ts="2026-10-11 23:50", input_tokens=100, cost_usd=1.0),
        dict(session_id="late", ts="2026-10-12 00:10", input_tokens=40, output_tokens=10, cost_usd=0.5),
    ])
    insert(con, "invocations", [
        dict(session_id="late", ts="2026-10-11 23:55", repo="repo-a"),
        dict(session_id="late", ts="2026-10-12 00:20", repo="repo-a"),
    ])
    # merged Monday 01:00 (week 42), shipped: links to the session by author, repo and window
    insert(con, "changes", [dict(change_id="c1", merged_at="2026-10-12 01:00", lines_added=30)])
    insert(con, "deployments", [dict(deployed_at="2026-10-12 02:00", change_ids=["c1"])])
    build(con, upto="user_week_features")

    assert one(con, "sessions", "started_at", "week_start")["week_start"] == W41
    columns = ("team", "org", "tokens", "cost_usd", "requests", "prompts", "sessions", "active_minutes",
               "merged_changes", "deployed_changes", "ai_merged_changes", "ai_deployed_changes",
               "unshipped_token_share", "night_share", "weekend_share")
    assert rows(con, "SELECT * FROM user_week_features ORDER BY week_start", "week_start", *columns) == [
        dict(week_start=W41, team="payments", org="eng", tokens=100, cost_usd=1.0, requests=1, prompts=1, sessions=1,
             active_minutes=5.0,   # 23:50 -> 23:55
             merged_changes=0, deployed_changes=0,
             ai_merged_changes=1, ai_deployed_changes=1,  # c1 is linked to a session active this week
             unshipped_token_share=0.0, night_share=0.0, weekend_share=1.0),
        dict(week_start=W42, team="payments", org="eng", tokens=50, cost_usd=0.5, requests=1, prompts=1, sessions=1,
             active_minutes=25.0,  # 23:55 -> 00:10 (15, counted in the week of the later event) + 00:10 -> 00:20
             merged_changes=1, deployed_changes=1,
             ai_merged_changes=1, ai_deployed_changes=1,
             unshipped_token_share=0.0, night_share=1.0, weekend_share=0.0),
    ]



def test_tiny_changes_per_session_counts_evidence_not_a_time_window(con):
    # s1 kept code and the changes name it; s2, in the same repository within hours, kept nothing:
    # its window links to the same tiny changes carry no credit, so one session fed all three
    insert(con, "token_usage", [dict(session_id=s, ts=ts, input_tokens=100)
                                for s, ts in (("s1", "2026-10-05 09:00"), ("s2", "2026-10-05 11:00"))])
    insert(con, "invocations", [
        dict(session_id="s1", ts="2026-10-05 09:05", repo="repo-a", lines_accepted=9),
        dict(session_id="s2", ts="2026-10-05 11:05", repo="repo-a", lines_accepted=0),
    ])
    insert(con, "changes", [dict(change_id=f"c{i}", repo="repo-a", merged_at=f"2026-10-05 1{3 + i}:00",
                                 lines_added=3, ai_session_ids=["s1"]) for i in range(3)])
    build(con, upto="user_week_features")
    assert rows(con, "SELECT session_id, count(*) AS links, sum(credit) AS credit FROM session_links GROUP BY ALL "
                     "ORDER BY session_id", "session_id", "links", "credit") == [
        dict(session_id="s1", links=3, credit=3.0), dict(session_id="s2", links=3, credit=0.0)]
    got = week(con)
    assert (got["tiny_merged_changes"], got["tiny_change_sessions"], got["tiny_changes_per_session"]) == (3, 1, 3.0)

def test_outcome_per_week(con):
    insert(con, "token_usage", [
        dict(session_id="s1", ts="2026-10-05 09:00", input_tokens=1000, cost_usd=1.0),
        dict(session_id="s2", ts="2026-10-06 09:00", input_tokens=3000, cost_usd=3.0),
    ])
    insert(con, "invocations", [
        dict(session_id="s1", ts="2026-10-05 09:05", repo="repo-a"),
        dict(session_id="s2", ts="2026-10-06 09:05", repo="repo-b"),
    ])
    insert(con, "changes", [
        dict(change_id="c1", repo="repo-a", merged_at="2026-10-05 12:00", lines_added=5, ai_session_ids=["s1"]),  # tiny
        dict(change_id="c2", repo="repo-a", merged_at="2026-10-05 13:00", lines_added=6, lines_deleted=2,
             ai_session_ids=["s1"]),  # tiny
        dict(change_id="c3", repo="repo-q", merged_at="2026-10-07 10:00", lines_added=6, lines_deleted=4),  # no session, tiny
        dict(change_id="c4", repo="repo-z", merged_at="2026-10-08 10:00", lines_added=100),  # no session
        dict(change_id="open", repo="repo-a", merged_at=None, lines_added=1),
        dict(change_id="other-author", author_id="u2", repo="repo-a", merged_at="2026-10-05 12:00"),
        dict(change_id="no-ai-week", repo="repo-a", merged_at="2026-10-20 12:00"),  # a week without AI usage
    ])
    insert(con, "deployments", [
        dict(deployment_id="d1", deployed_at="2026-10-05 15:00", change_ids=["c1", "c2"]),
        dict(deployment_id="d-rb", deployed_at="2026-10-07 12:00", status="rolled_back", change_ids=["c3"]),
        dict(deployment_id="d-fail", deployed_at="2026-10-08 11:00", status="failure", change_ids=["c4"]),
        dict(deployment_id="d2", deployed_at="2026-10-08 12:00", change_ids=["c4"]),
        dict(deployment_id="d3", deployed_at="2026-10-09 12:00", change_ids=["c4", "c1"]),  # re-deploys: not first
    ])
    build(con, upto="user_week_features")
    assert [(r["user_id"], r["week_start"]) for r in rows(con, "user_week_features")] == [("u1", W41)]
    got = week(con)
    assert {k: got[k] for k in ("merged_changes", "deployed_changes", "ai_merged_changes", "ai_deployed_changes",
                                "unshipped_cost_usd", "tiny_change_share", "mean_change_lines")} == dict(
        merged_changes=4,            # c1 c2 c3 c4 (c3 and c4 without AI)
        deployed_changes=3,          # c1 c2 c4 (c3 only rolled back)
        ai_merged_changes=2,         # c1 c2, linked to s1
        ai_deployed_changes=2,
        unshipped_cost_usd=3.0,      # s2 has no link to a deployed change
        tiny_change_share=0.75,      # c1 (5), c2 (8) and c3 (10) of 4
        mean_change_lines=30.75,     # (5 + 8 + 10 + 100) / 4
    )
    assert got["tiny_merged_changes"] == 3  # c1, c2 and c3
    # c1 and c2 name s1: two tiny changes cut from one session (c3's tiny change names none)
    assert (got["tiny_change_sessions"], got["tiny_changes_per_session"]) == (1, 2.0)
    assert got["merged_lines"] == 123  # 5 + 8 + 10 + 100
    assert got["tokens_per_merged_line"] == pytest.approx(4000 / 123)
    assert got["tokens_per_merged_change"] == pytest.approx(4000 / 4)
    assert got["cost_per_merged_change"] == pytest.approx(4.0 / 4)
    assert got["tokens_per_deployed_change"] == pytest.approx(4000 / 3)
    assert got["cost_per_deployed_change"] == pytest.approx(4.0 / 3)
    assert got["unshipped_token_share"] == pytest.approx(3000 / 4000)
    # first shipped by d1 (c1, c2) and d2 (c4): 2 deployments for 3 deployed changes
    assert got["deployments_per_change"] == pytest.approx(2 / 3)


def test_no_changes_gives_null_per_change_costs(con):
    insert(con, "token_usage", [dict(ts="2026-10-05 09:00", input_tokens=10, cost_usd=0.1)])
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "merged_changes", "deployed_changes", "tokens_per_merged_change",
                "cost_per_merged_change", "tokens_per_deployed_change", "cost_per_deployed_change",
                "unshipped_token_share", "unshipped_cost_usd", "tiny_change_share", "deployments_per_change",
                "mean_change_lines", "merged_lines", "tokens_per_merged_line") == dict(
        merged_changes=0, deployed_changes=0, tokens_per_merged_change=None, cost_per_merged_change=None,
        tokens_per_deployed_change=None, cost_per_deployed_change=None,
        unshipped_token_share=1.0, unshipped_cost_usd=0.1,
        tiny_change_share=0.0, deployments_per_change=None, mean_change_lines=None,
        merged_lines=None, tokens_per_merged_line=None)


def test_merged_lines_are_unknown_when_a_merged_change_does_not_report_its_size(con):
    insert(con, "token_usage", [dict(ts="2026-10-05 09:00", input_tokens=1000)])
    insert(con, "changes", [dict(change_id="sized", merged_at="2026-10-05 12:00", lines_added=40, lines_deleted=10),
                            dict(change_id="unsized", merged_at="2026-10-06 12:00", lines_added=None,
                                 lines_deleted=None)])
    build(con, upto="user_week_features")
    # 50 known lines would understate what merged: tokens per merged line is unknown, not 1000 / 50
    assert week(con, "u1", W41, "merged_changes", "merged_lines", "tokens_per_merged_line") == dict(
        merged_changes=2, merged_lines=None, tokens_per_merged_line=None)


def test_repeat_shares_runs_and_gap_cv(con):
    insert(con, "invocations", [
        dict(session_id="s1", ts="2026-10-05 09:00", prompt_fingerprint="X", prompt_simhash=0),
        dict(session_id="s1", ts="2026-10-05 09:01", prompt_fingerprint="X", prompt_simhash=0),     # exact in session
        dict(session_id="s2", ts="2026-10-05 10:00", prompt_fingerprint="X", prompt_simhash=0),     # exact in week only
        dict(session_id="s2", ts="2026-10-05 10:01", prompt_fingerprint="Y", prompt_simhash=0b1),   # near previous
        dict(session_id="s2", ts="2026-10-05 10:02", prompt_fingerprint="Z", prompt_simhash=0b11),  # near previous
        # the next week: two prompts, so no gap_cv
        dict(session_id="s3", ts="2026-10-12 09:00"),
        dict(session_id="s3", ts="2026-10-12 09:05"),
    ])
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "prompts", "sessions", "exact_repeat_share", "near_repeat_share",
                "exact_repeat_share_week", "near_repeat_share_week", "longest_near_run", "gap_cv") == dict(
        prompts=5, sessions=2,
        exact_repeat_share=pytest.approx(1 / 5),        # 2nd
        near_repeat_share=pytest.approx(3 / 5),         # 2nd, 4th, 5th
        exact_repeat_share_week=pytest.approx(2 / 5),   # 2nd, 3rd
        near_repeat_share_week=pytest.approx(4 / 5),    # all but the 1st
        longest_near_run=3,                             # s2: X Y Z
        # gaps within sessions only: 60 | 60 60 -> cv 0 (the 59 min between s1 and s2 is no gap)
        gap_cv=0.0,
    )
    assert week(con, "u1", W42, "prompts", "gap_cv", "longest_near_run", "near_repeat_share") == dict(
        prompts=2, gap_cv=None, longest_near_run=1, near_repeat_share=0.0)



def test_exact_repeats_that_kept_nothing(con):
    # "yes" approves a step and the agent keeps code; "again" regenerates and keeps nothing
    insert(con, "invocations", [
        dict(session_id="s1", ts="2026-10-05 09:00", prompt_fingerprint="task", lines_accepted=0),
        dict(session_id="s1", ts="2026-10-05 09:01", prompt_fingerprint="yes", lines_accepted=0),
        dict(session_id="s1", ts="2026-10-05 09:02", prompt_fingerprint="yes", lines_accepted=12),   # kept code
        dict(session_id="s1", ts="2026-10-05 09:03", prompt_fingerprint="again", lines_accepted=0),
        dict(session_id="s1", ts="2026-10-05 09:04", prompt_fingerprint="again", lines_accepted=0),  # kept nothing
        dict(session_id="s1", ts="2026-10-05 09:05", prompt_fingerprint="again", lines_accepted=0,
             commit_sha="abc123"),                                                                    # committed
        dict(session_id="s1", ts="2026-10-05 09:06", prompt_fingerprint="again", lines_accepted=None),  # unknown
        # the next week, no prompt reports lines: unknown, not "kept nothing"
        dict(session_id="s2", ts="2026-10-12 09:00", prompt_fingerprint="again"),
        dict(session_id="s2", ts="2026-10-12 09:01", prompt_fingerprint="again"),
    ])
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "exact_repeat_share_week", "exact_repeat_unkept_share_week") == dict(
        exact_repeat_share_week=pytest.approx(4 / 7), exact_repeat_unkept_share_week=pytest.approx(1 / 7))
    assert week(con, "u1", W42, "exact_repeat_share_week", "exact_repeat_unkept_share_week") == dict(
        exact_repeat_share_week=pytest.approx(1 / 2), exact_repeat_unkept_share_week=None)


def test_prompts_in_sessions_padded_with_repeats_that_kept_nothing(con):
    # "pad": a task, then "again" five times keeping nothing (4 of its 6 prompts repeat the week's
    # earlier ones and kept nothing); "work": approvals the agent acted on (1 of 4 kept nothing);
    # "short": all repeats that kept nothing, but only 3 prompts
    insert(con, "invocations", [
        dict(session_id="pad", ts="2026-10-05 09:00", prompt_fingerprint="task", lines_accepted=8),
        *[dict(session_id="pad", ts=f"2026-10-05 09:0{m}", prompt_fingerprint="again", lines_accepted=0)
          for m in range(1, 6)],
        dict(session_id="work", ts="2026-10-05 10:00", prompt_fingerprint="task2", lines_accepted=5),
        dict(session_id="work", ts="2026-10-05 10:01", prompt_fingerprint="yes", lines_accepted=0),
        dict(session_id="work", ts="2026-10-05 10:02", prompt_fingerprint="yes", lines_accepted=0),
        dict(session_id="work", ts="2026-10-05 10:03", prompt_fingerprint="yes", lines_accepted=10),
        *[dict(session_id="short", ts=f"2026-10-05 11:0{m}", prompt_fingerprint="again", lines_accepted=0)
          for m in range(3)],
        # the next week, no prompt reports lines: unknown, not "padded"
        *[dict(session_id="s2", ts=f"2026-10-12 09:0{m}", prompt_fingerprint="again") for m in range(5)],
    ])
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "prompts", "exact_repeat_unkept_share_week", "repeat_padded_prompt_share_week") == dict(
        prompts=13, exact_repeat_unkept_share_week=pytest.approx(8 / 13),
        repeat_padded_prompt_share_week=pytest.approx(6 / 13))
    assert week(con, "u1", W42, "repeat_padded_prompt_share_week") == dict(repeat_padded_prompt_share_week=None)


def test_idle_sessions_share_of_the_week(con):
    # "idle": 20 calls writing 10 output tokens each, nothing kept, nothing deployed;
    # "busy": the same calls writing 500 each; "unknown": idle-looking but its lines are not reported
    insert(con, "token_usage", [dict(session_id=s, ts=f"2026-10-05 09:{m:02d}", input_tokens=90, output_tokens=out)
                                for s, out in (("idle", 10), ("busy", 500), ("unknown", 10)) for m in range(20)])
    insert(con, "invocations", [
        dict(session_id="idle", ts="2026-10-05 09:00", prompt_fingerprint="continue", lines_accepted=0),
        dict(session_id="idle", ts="2026-10-05 09:10", prompt_fingerprint="continue", lines_accepted=0),
        dict(session_id="busy", ts="2026-10-05 09:00", lines_accepted=0),
        dict(session_id="unknown", ts="2026-10-05 09:00"),
    ])
    build(con, upto="user_week_features")
    got = week(con, "u1", W41, "tokens", "idle_session_token_share", "exact_repeat_unkept_share_week")
    assert got["idle_session_token_share"] == pytest.approx(20 * 100 / got["tokens"])
    assert got["exact_repeat_unkept_share_week"] == 0.0  # the idle agent's "continue" counts as idling, not padding


def test_codeless_repository_sessions(con):
    # only "explore" worked in a repository, kept no code (reported) and fed no merged change
    insert(con, "token_usage", [dict(session_id=s, ts="2026-10-05 09:00", input_tokens=100)
                                for s in ("explore", "work", "chat", "unknown", "named")])
    insert(con, "invocations", [
        dict(session_id="explore", ts="2026-10-05 09:01", repo="r", lines_accepted=0),
        dict(session_id="work", ts="2026-10-05 09:01", repo="r", lines_accepted=5),
        dict(session_id="chat", ts="2026-10-05 09:01", repo=None, lines_accepted=0),
        dict(session_id="unknown", ts="2026-10-05 09:01", repo="r"),                 # lines not reported
        dict(session_id="named", ts="2026-10-05 09:01", repo="r", lines_accepted=0),  # a merged change names it
    ])
    insert(con, "changes", [dict(change_id="c1", repo="r", merged_at="2026-10-05 12:00", ai_session_ids=["named"])])
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "codeless_repo_sessions", "codeless_repo_token_share") == dict(
        codeless_repo_sessions=1, codeless_repo_token_share=pytest.approx(100 / 500))

def test_codeless_sessions_are_unknown_where_the_source_names_no_repository(con):
    insert(con, "token_usage", [dict(user_id=u, session_id=u, ts="2026-10-05 09:00", input_tokens=100) for u in ("u1", "u2")])
    insert(con, "invocations", [
        dict(user_id="u1", session_id="u1", ts="2026-10-05 09:01", lines_accepted=0, repo_unreported=True),
        dict(user_id="u2", session_id="u2", ts="2026-10-05 09:01", lines_accepted=0, repo="r"),
    ])
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "codeless_repo_sessions", "codeless_repo_token_share", "no_repo_prompt_share") == dict(
        codeless_repo_sessions=None, codeless_repo_token_share=None, no_repo_prompt_share=None)
    assert week(con, "u2", W41, "codeless_repo_sessions", "codeless_repo_token_share", "no_repo_prompt_share") == dict(
        codeless_repo_sessions=1, codeless_repo_token_share=1.0, no_repo_prompt_share=0.0)


def test_merged_changes_into_repositories_that_deploy(con):
    # "app" deploys (its change c2, merged another week, shipped); "lab" never does
    insert(con, "token_usage", [dict(ts="2026-10-05 09:00", input_tokens=100)])
    insert(con, "changes", [
        dict(change_id="c1", repo="app", merged_at="2026-10-05 12:00"),
        dict(change_id="c2", repo="app", merged_at="2026-09-28 12:00"),
        dict(change_id="l1", repo="lab", merged_at="2026-10-05 12:00"),
        dict(change_id="l2", repo="lab", merged_at="2026-10-06 12:00"),
    ])
    insert(con, "deployments", [dict(repo="app", deployed_at="2026-09-29 10:00", change_ids=["c2"])])
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "merged_changes", "deployed_changes", "deploying_repo_merged_changes") == dict(
        merged_changes=3, deployed_changes=0, deploying_repo_merged_changes=1)


def test_merges_into_deploying_repositories_are_unknown_without_any_deployment(con):
    # no deployment reported at all: whether a repository deploys is unknown, not "never"
    insert(con, "token_usage", [dict(ts="2026-10-05 09:00", input_tokens=100)])
    insert(con, "changes", [dict(change_id="c1", repo="app", merged_at="2026-10-05 12:00")])
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "merged_changes", "deploying_repo_merged_changes") == dict(
        merged_changes=1, deploying_repo_merged_changes=None)


def test_time_of_day_peak_and_snapshot_shares(con):
    insert(con, "token_usage", [
        dict(ts="2026-10-05 02:00", input_tokens=100),   # Monday night
        dict(ts="2026-10-09 11:59", input_tokens=25),    # Friday, a minute before the snapshot window
        dict(ts="2026-10-09 13:00", input_tokens=200),   # in the window 12:00-18:00
        dict(ts="2026-10-09 17:59", input_tokens=300),   # in the window
        dict(ts="2026-10-09 18:00", input_tokens=50),    # the snapshot itself: after the window
        dict(ts="2026-10-10 10:00", input_tokens=325),   # Saturday
    ])  # 1000 tokens
    build(con, upto="user_week_features")
    got = week(con, "u1", W41, "tokens", "night_share", "weekend_share", "snapshot_window_share",
               "peak_3h_token_share", "off_hours_share")
    assert got == dict(
        tokens=1000,
        night_share=0.1,
        weekend_share=0.325,
        snapshot_window_share=0.5,      # 200 + 300
        peak_3h_token_share=0.35,       # 17:59 + 18:00 (350) beats 11:59 + 13:00 (225) and Saturday (325)
        off_hours_share=0.0,            # no prompts: no usual hours to be off
    )
    # snapshot Saturday 12:00 with a 24 h window: Friday 12:00 to Saturday 12:00
    build(con, upto="user_week_features", snapshot_weekday=6, snapshot_hour=12, snapshot_window_hours=24.0)
    assert week(con, "u1", W41, "snapshot_window_share")["snapshot_window_share"] == pytest.approx(0.875)
    # a 6.5 h window starts at 11:30, inside an hour: 11:59 is in it, though 11:00-11:29 would not be
    build(con, upto="user_week_features", snapshot_window_hours=6.5)
    assert week(con, "u1", W41, "snapshot_window_share")["snapshot_window_share"] == pytest.approx(0.525)
    insert(con, "token_usage", [dict(ts="2026-10-09 11:10", input_tokens=1000)])  # same hour, before 11:30
    build(con, upto="user_week_features", snapshot_window_hours=6.5)
    assert week(con, "u1", W41, "snapshot_window_share")["snapshot_window_share"] == pytest.approx(525 / 2000)


def test_off_hours_share_uses_the_persons_own_usual_hours(con):
    # history (an earlier week): 39 prompts around 10:00 and 1 at 02:00 (2.5% >= 2%: still usual)
    insert(con, "invocations", [dict(ts=f"2026-09-28 10:{m:02d}") for m in range(39)])
    insert(con, "invocations", [dict(ts="2026-09-29 02:30")])
    insert(con, "token_usage", [
        dict(ts="2026-10-05 10:30", input_tokens=100),
        dict(ts="2026-10-05 02:10", input_tokens=100),
        dict(ts="2026-10-05 22:00", input_tokens=200),   # hour 22: none of the person's prompts
    ])
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "off_hours_share")["off_hours_share"] == pytest.approx(200 / 400)
    build(con, upto="user_week_features", usual_hour_min_share=0.03)  # 02:00 (2.5%) is now off hours
    assert week(con, "u1", W41, "off_hours_share")["off_hours_share"] == pytest.approx(300 / 400)


def test_work_signal_ratios_over_the_week(con):
    insert(con, "people", [dict(user_id="u1", team="t1", org="o1")])
    insert(con, "token_usage", [
        dict(session_id="s1", ts="2026-10-05 09:00", input_tokens=800, output_tokens=200, cache_read_tokens=3000),
        dict(session_id="s2", ts="2026-10-06 09:00", input_tokens=200, output_tokens=300, cache_read_tokens=0,
             cache_write_tokens=500),
        dict(session_id="s2", ts="2026-10-06 09:01"),
    ])  # 5000 tokens: input 1000, output 500, cache read 3000, cache write 500
    insert(con, "invocations", [
        dict(session_id="s1", ts="2026-10-05 09:00", repo="r", prompt_length=10, lines_accepted=4),
        dict(session_id="s2", ts="2026-10-06 09:00", repo=None, prompt_length=20, lines_accepted=6),
    ])
    # a person not in `people`, prompts but no requests
    insert(con, "invocations", [dict(user_id="ghost", session_id="g", ts="2026-10-05 09:00", prompt_length=7)])
    build(con, upto="user_week_features")
    ratios = ("team", "org", "tokens", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
              "requests", "prompts", "lines_accepted_per_ktok", "output_input_ratio", "cache_read_share",
              "requests_per_prompt", "no_repo_prompt_share", "mean_prompt_length")
    assert week(con, "u1", W41, *ratios) == dict(
        team="t1", org="o1", tokens=5000, input_tokens=1000, output_tokens=500, cache_read_tokens=3000,
        cache_write_tokens=500, requests=3, prompts=2,
        lines_accepted_per_ktok=2.0,   # 10 / (5000 / 1000)
        output_input_ratio=0.5,        # 500 / 1000
        cache_read_share=0.6,          # 3000 / 5000
        requests_per_prompt=1.5,
        no_repo_prompt_share=0.5,
        mean_prompt_length=15.0,
    )
    assert week(con, "ghost", W41, *ratios) == dict(
        team="unassigned", org="unassigned", tokens=0, input_tokens=0, output_tokens=0, cache_read_tokens=0,
        cache_write_tokens=0, requests=0, prompts=1, lines_accepted_per_ktok=None, output_input_ratio=None,
        cache_read_share=None, requests_per_prompt=0.0, no_repo_prompt_share=1.0, mean_prompt_length=7.0)


def test_one_sided_weeks_divide_zero_not_null(con):
    # prompts but no request: 0 tokens, so 0 tokens per merged change (NULL only without changes)
    insert(con, "invocations", [dict(user_id="talker", session_id="t", ts="2026-10-05 09:00", lines_accepted=3)])
    insert(con, "changes", [dict(change_id="c-by-talker", author_id="talker", merged_at="2026-10-06 09:00",
                                 lines_added=20)])
    insert(con, "deployments", [dict(deployed_at="2026-10-06 10:00", change_ids=["c-by-talker"])])
    # requests but no prompt: no lines reported (unknown), no prompts to divide by
    insert(con, "token_usage", [dict(user_id="caller", session_id="c", ts="2026-10-05 09:00", input_tokens=500)])
    build(con, upto="user_week_features")
    assert week(con, "talker", W41, "tokens", "merged_changes", "deployed_changes", "tokens_per_merged_change",
                "cost_per_merged_change", "tokens_per_deployed_change", "requests_per_prompt",
                "lines_accepted_per_ktok") == dict(
        tokens=0, merged_changes=1, deployed_changes=1, tokens_per_merged_change=0.0, cost_per_merged_change=0.0,
        tokens_per_deployed_change=0.0, requests_per_prompt=0.0, lines_accepted_per_ktok=None)
    # no prompt reports lines kept: unknown, not "no code kept"
    assert week(con, "caller", W41, "tokens", "requests_per_prompt", "lines_accepted_per_ktok",
                "no_repo_prompt_share", "mean_prompt_length", "gap_cv") == dict(
        tokens=500, requests_per_prompt=None, lines_accepted_per_ktok=None,
        no_repo_prompt_share=None, mean_prompt_length=None, gap_cv=None)


def test_ai_deployed_changes_are_the_linked_changes_that_shipped(con):
    # s1 (100 tokens) feeds a shipped change; s2 (300 tokens) feeds only changes that did not ship
    insert(con, "invocations", [dict(session_id="s1", ts="2026-10-05 09:00", repo="repo-a"),
                                dict(session_id="s2", ts="2026-10-05 09:00", repo="repo-b")])
    insert(con, "token_usage", [dict(session_id="s1", ts="2026-10-05 09:01", input_tokens=100),
                                dict(session_id="s2", ts="2026-10-05 09:01", input_tokens=300)])
    insert(con, "changes", [
        dict(change_id="shipped", merged_at="2026-10-05 12:00"),
        dict(change_id="merged-only", repo="repo-b", merged_at="2026-10-05 13:00"),
        dict(change_id="open", merged_at=None),  # linked to no session
    ])
    insert(con, "deployments", [dict(deployed_at="2026-10-05 15:00", change_ids=["shipped"])])
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "merged_changes", "deployed_changes", "ai_merged_changes", "ai_deployed_changes",
                "unshipped_token_share") == dict(
        merged_changes=2, deployed_changes=1, ai_merged_changes=2, ai_deployed_changes=1,
        unshipped_token_share=0.75)  # s2: linked, but to no deployed change


def test_night_and_weekend_boundaries(con):
    insert(con, "token_usage", [
        dict(ts="2026-10-05 05:59", input_tokens=10),   # Monday, night
        dict(ts="2026-10-05 06:00", input_tokens=20),   # Monday, day
        dict(ts="2026-10-09 23:59", input_tokens=30),   # Friday, not the weekend yet
        dict(ts="2026-10-10 00:01", input_tokens=40),   # Saturday, night and weekend
    ])
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "night_share", "weekend_share") == dict(night_share=0.5, weekend_share=0.4)


def test_peak_3h_window_width(con):
    insert(con, "token_usage", [
        dict(ts="2026-10-06 09:00", input_tokens=40),
        dict(ts="2026-10-06 11:50", input_tokens=30),   # 2 h 50 after the first
        dict(ts="2026-10-06 12:10", input_tokens=30),   # 3 h 10 after the first
    ])
    build(con, upto="user_week_features")
    # 09:00-12:00 holds 70 of 100; 11:50-14:50 holds 60
    assert week(con, "u1", W41, "peak_3h_token_share")["peak_3h_token_share"] == 0.7


def test_usual_hour_threshold_is_inclusive(con):
    # 1 prompt of 50 at 03:00 is exactly 2%: a usual hour (only hours under 2% are off hours)
    insert(con, "invocations", [dict(ts=f"2026-10-05 10:{m:02d}") for m in range(49)]
           + [dict(ts="2026-10-05 03:00")])
    insert(con, "token_usage", [dict(ts="2026-10-05 03:10", input_tokens=10),
                                dict(ts="2026-10-05 04:10", input_tokens=30)])  # hour 4: no prompts
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "off_hours_share")["off_hours_share"] == 0.75


def test_unmerged_share_counts_sessions_that_fed_no_merged_change(con):
    # s-merged feeds a merged change that never deploys (research that ships nowhere); s-none feeds
    # nothing; s-pending committed code whose change is still in review: pending, not unmerged
    insert(con, "invocations", [
        dict(session_id="s-merged", ts="2026-10-05 09:00", repo="repo-a", lines_accepted=20),
        dict(session_id="s-none", ts="2026-10-05 09:00", repo="repo-b", lines_accepted=0),
        dict(session_id="s-pending", ts="2026-10-05 09:00", repo="repo-c", lines_accepted=40, commit_sha="beef01"),
    ])
    insert(con, "token_usage", [dict(session_id="s-merged", ts="2026-10-05 09:01", input_tokens=100),
                                dict(session_id="s-none", ts="2026-10-05 09:01", input_tokens=300),
                                dict(session_id="s-pending", ts="2026-10-05 09:01", input_tokens=400)])
    insert(con, "changes", [dict(change_id="c1", merged_at="2026-10-05 12:00", lines_added=20)])
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "unshipped_token_share", "unmerged_token_share") == dict(
        unshipped_token_share=1.0, unmerged_token_share=300 / 800)


def test_sessions_of_unknown_outcome_and_commits_made(con):
    # the source reports no lines kept: s-window's only link is a time window it cannot be credited
    # on (unknown outcome); s-named is named by the change; s-none has no link at all (unmerged);
    # s-commit made a commit of its own (evidence of work, pending or shipped)
    insert(con, "invocations", [
        dict(session_id="s-window", ts="2026-10-05 09:00", repo="repo-a"),
        dict(session_id="s-named", ts="2026-10-05 09:00", repo="repo-a"),
        dict(session_id="s-none", ts="2026-10-05 09:00", repo="repo-b"),
        dict(session_id="s-commit", ts="2026-10-05 09:00", repo="repo-c", commit_sha="abc1"),
        dict(session_id="s-commit", ts="2026-10-05 09:10", repo="repo-c", commit_sha="abc2"),
    ])
    insert(con, "token_usage", [dict(session_id="s-window", ts="2026-10-05 09:01", input_tokens=400),
                                dict(session_id="s-named", ts="2026-10-05 09:01", input_tokens=100),
                                dict(session_id="s-none", ts="2026-10-05 09:01", input_tokens=200),
                                dict(session_id="s-commit", ts="2026-10-05 09:01", input_tokens=300)])
    insert(con, "changes", [dict(change_id="c1", merged_at="2026-10-05 12:00", lines_added=20,
                                 ai_session_ids=["s-named"]),
                            dict(change_id="c2", merged_at="2026-10-05 13:00", lines_added=5)])
    build(con, upto="user_week_features")
    assert week(con, "u1", W41, "unmerged_token_share", "unknown_outcome_token_share", "unevidenced_token_share",
                "commits_made", "lines_accepted_per_ktok") == dict(
        unmerged_token_share=0.2,          # s-none: 200 of 1000
        unknown_outcome_token_share=0.4,   # s-window: 400 of 1000
        unevidenced_token_share=0.6,       # no evidence either way of feeding merged work
        commits_made=2,
        lines_accepted_per_ktok=None)      # no prompt reports lines: unknown, not 0
