"""sessions: one row per session_id (docs/features.md, "sessions")."""
from datetime import date, datetime

import pytest

from tests.features.conftest import build, by, insert, one


def test_session_totals_span_and_people(con):
    insert(con, "people", [dict(user_id="u1", team="payments", org="eng")])
    insert(con, "token_usage", [
        dict(ts="2026-10-05 09:00", input_tokens=100, output_tokens=20, cache_read_tokens=300,
             cache_write_tokens=5, cost_usd=0.25),
        dict(ts="2026-10-05 09:30", input_tokens=10, output_tokens=2, cache_read_tokens=0,
             cache_write_tokens=1, cost_usd=None),  # a model with no price
    ])
    insert(con, "invocations", [
        dict(ts="2026-10-05 09:05", repo="repo-b", lines_accepted=7, tool_calls=2, commit_sha="abc"),
        dict(ts="2026-10-05 09:32", repo="repo-a", lines_accepted=3, tool_calls=None, commit_sha="abc"),
        dict(ts="2026-10-05 09:31", repo=None, lines_accepted=None, tool_calls=1, commit_sha="def"),
    ])
    build(con, upto="sessions")
    assert one(con, "sessions") == dict(
        session_id="s1", user_id="u1", team="payments", org="eng",
        started_at=datetime(2026, 10, 5, 9, 0), ended_at=datetime(2026, 10, 5, 9, 32),
        week_start=date(2026, 10, 5),
        duration_minutes=32.0,
        # events 09:00 09:05 09:30 09:31 09:32: gaps 5 + min(25, 15) + 1 + 1
        active_minutes=22.0,
        requests=2, prompts=3,
        input_tokens=110, output_tokens=22, cache_read_tokens=300, cache_write_tokens=6,
        tokens=438,  # 110 + 22 + 300 + 6
        cost_usd=0.25, unpriced_requests=1,
        repos=["repo-a", "repo-b"],
        lines_accepted=10, tool_calls=3,
        commit_shas=["abc", "def"],
        repo_unreported=False,  # its source reports repositories (one prompt had none)
    )


def test_single_event_session_has_no_active_time(con):
    # one request: no gap at all, so no active time (the cap applies to gaps, not to a missing one)
    insert(con, "token_usage", [dict(ts="2026-10-05 09:00", session_id="lone", input_tokens=5)])
    build(con, upto="sessions")
    row = one(con, "sessions", "duration_minutes", "active_minutes", "requests", "prompts")
    assert row == dict(duration_minutes=0.0, active_minutes=0.0, requests=1, prompts=0)


def test_active_time_caps_each_gap(con):
    insert(con, "invocations", [
        dict(ts="2026-10-05 09:00"),
        dict(ts="2026-10-05 09:10"),   # gap 10
        dict(ts="2026-10-05 11:10"),   # gap 120 -> 15
        dict(ts="2026-10-05 11:25"),   # gap 15 (exactly the cap)
    ])
    build(con, upto="sessions")
    assert one(con, "sessions", "active_minutes", "duration_minutes") == dict(
        active_minutes=40.0, duration_minutes=145.0)
    build(con, upto="sessions", active_gap_cap_minutes=5.0)
    assert one(con, "sessions", "active_minutes")["active_minutes"] == 15.0  # 5 + 5 + 5


def test_session_over_midnight_and_iso_week_boundary(con):
    # Sunday 23:50 -> Monday 00:20 UTC: one session, started (and weekly bucketed) on the Sunday
    insert(con, "token_usage", [
        dict(ts="2026-10-11 23:50", session_id="late", input_tokens=100),
        dict(ts="2026-10-12 00:20", session_id="late", input_tokens=50),
    ])
    insert(con, "invocations", [dict(ts="2026-10-12 00:05", session_id="late")])
    build(con, upto="sessions")
    assert one(con, "sessions", "session_id", "started_at", "ended_at", "week_start", "duration_minutes",
               "active_minutes", "tokens", "requests", "prompts") == dict(
        session_id="late",
        started_at=datetime(2026, 10, 11, 23, 50), ended_at=datetime(2026, 10, 12, 0, 20),
        week_start=date(2026, 10, 5),  # the Monday of the Sunday it started on
        duration_minutes=30.0, active_minutes=30.0,  # 15 + 15
        tokens=150, requests=2, prompts=1,
    )


def test_unassigned_person_and_first_event_user(con):
    insert(con, "people", [dict(user_id="known", team="t", org="o"),
                           dict(user_id="no-team", team=None, org="o")])
    insert(con, "token_usage", [
        dict(ts="2026-10-05 09:00", session_id="s-ghost", user_id="ghost"),
        dict(ts="2026-10-05 09:00", session_id="s-none", user_id="no-team"),
        # the session's person is the user of its first event
        dict(ts="2026-10-05 10:05", session_id="s-mixed", user_id="known"),
    ])
    insert(con, "invocations", [dict(ts="2026-10-05 10:00", session_id="s-mixed", user_id="ghost")])
    build(con, upto="sessions")
    assert by(con, "sessions", "session_id", "user_id", "team", "org") == {
        "s-ghost": dict(user_id="ghost", team="unassigned", org="unassigned"),
        "s-none": dict(user_id="no-team", team="unassigned", org="o"),
        "s-mixed": dict(user_id="ghost", team="unassigned", org="unassigned"),
    }


def test_prompt_only_and_request_only_sessions(con):
    insert(con, "token_usage", [dict(ts="2026-10-05 09:00", session_id="req", output_tokens=9, cost_usd=0.1)])
    insert(con, "invocations", [dict(ts="2026-10-05 09:00", session_id="pr", repo="r")])
    build(con, upto="sessions")
    got = by(con, "sessions", "session_id", "requests", "prompts", "tokens", "cost_usd",
             "unpriced_requests", "repos", "commit_shas", "lines_accepted", "tool_calls")
    assert got == {
        "req": dict(requests=1, prompts=0, tokens=9, cost_usd=0.1, unpriced_requests=0, repos=[],
                    commit_shas=[], lines_accepted=None, tool_calls=None),  # no prompt reports them: unknown
        "pr": dict(requests=0, prompts=1, tokens=0, cost_usd=0.0, unpriced_requests=0, repos=["r"],
                   commit_shas=[], lines_accepted=None, tool_calls=None),
    }


@pytest.mark.parametrize("cost", [None, 0.0])
def test_unpriced_is_null_cost_not_zero_cost(con, cost):
    insert(con, "token_usage", [dict(ts="2026-10-05 09:00", input_tokens=1, cost_usd=cost)])
    build(con, upto="sessions")
    assert one(con, "sessions", "cost_usd", "unpriced_requests") == dict(
        cost_usd=0.0, unpriced_requests=1 if cost is None else 0)
