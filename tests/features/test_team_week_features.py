"""team_week_features (one row per team x week_start) and its team_ columns in
user_week_peer_features: docs/features.md, "team_week_features"."""
from datetime import date

import pytest

from tests.features.conftest import build, insert, one, rows

W40, W41, W42 = date(2026, 9, 28), date(2026, 10, 5), date(2026, 10, 12)


def session(user: str, week: date, tokens: int, lines: int) -> tuple[dict, dict]:
    """One Monday session of `user` in repository r that kept `lines` lines (0: kept no code)."""
    session_id = f"{user}-{week}"
    return (dict(user_id=user, session_id=session_id, ts=f"{week} 09:00", input_tokens=tokens),
            dict(user_id=user, session_id=session_id, ts=f"{week} 09:01", repo="r", lines_accepted=lines))


@pytest.fixture
def team_burns_in_w42(con):
    """Team t1 (a, b, c, d) keeps code in W40 and W41; in W42 a, b and c spend 300 tokens each in a
    session that kept none, d 100 in one that kept some. Team t2 (e) and g (in no team) keep code."""
    insert(con, "people", [dict(user_id=u, team="t1", org="o1") for u in "abcd"] + [dict(user_id="e", team="t2", org="o1")])
    sessions = ([session(u, w, 100, 5) for u in "abcd" for w in (W40, W41)]
                + [session(u, W42, 300, 0) for u in "abc"] + [session("d", W42, 100, 5)]
                + [session("e", W42, 100, 5), session("g", W42, 100, 5)])
    insert(con, "token_usage", [usage for usage, _ in sessions])
    insert(con, "invocations", [prompt for _, prompt in sessions])
    build(con, min_peer_people=1, min_own_weeks=2, min_company_people=1)
    return con


def test_a_team_week_against_the_company_and_its_own_weeks(team_burns_in_w42):
    got = one(team_burns_in_w42, f"SELECT * FROM team_week_features WHERE team = 't1' AND week_start = '{W42}'")
    # company tokens in W39-W42: eleven user-weeks of 100 and three of 300: median 100, MAD 0, floored at
    # 5% of the median (5): (300 - 100) / (1.4826 * 5)
    assert got == dict(
        team="t1", week_start=W42, team_people=4, team_tokens_median=300.0,
        team_tokens_company_z=pytest.approx(200 / (1.4826 * 5)),
        team_codeless_repo_sessions_median=1.0,
        team_codeless_repo_token_share_median=1.0,  # a, b, c: all their tokens; d none
        team_codeless_repo_token_share_own_median=0.0,  # W40 and W41 kept code
        team_codeless_repo_token_share_own_rise=1.0,
    )


def test_too_little_history_is_no_own_baseline(team_burns_in_w42):
    # W41 has one previous team-week (min_own_weeks = 2): no baseline, no rise
    got = one(team_burns_in_w42, f"SELECT * FROM team_week_features WHERE team = 't1' AND week_start = '{W41}'")
    assert got["team_codeless_repo_token_share_median"] == 0.0
    assert got["team_codeless_repo_token_share_own_median"] is None
    assert got["team_codeless_repo_token_share_own_rise"] is None


def test_people_in_no_team_have_no_team_week(team_burns_in_w42):
    assert {(r["team"], r["week_start"]) for r in rows(team_burns_in_w42, "team_week_features")} == {
        ("t1", W40), ("t1", W41), ("t1", W42), ("t2", W42)}
    got = {r["user_id"]: (r["team_people"], r["team_codeless_repo_token_share_median"])
           for r in rows(team_burns_in_w42, f"SELECT * FROM user_week_peer_features WHERE week_start = '{W42}'")}
    assert got == {"a": (4, 1.0), "b": (4, 1.0), "c": (4, 1.0), "d": (4, 1.0), "e": (1, 0.0), "g": (None, None)}
