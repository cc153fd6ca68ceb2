"""peer_baselines (one row per scope x group x week_start x feature) and user_week_peer_features
(one row per user_id x week_start): docs/features.md, "peer_baselines" and "user_week_peer_features"."""
from datetime import date

import pytest

from features.build import PEER_FEATURES, PEER_LEVELS
from tests.features.conftest import build, insert, new_connection, one, rows

W38, W39, W40, W41, W42 = (date(2026, 9, 14), date(2026, 9, 21), date(2026, 9, 28), date(2026, 10, 5),
                           date(2026, 10, 12))


@pytest.fixture(scope="module")
def peers():
    """Tokens per user-week (one request each, Monday 09:00):
    team t1 (org o1): a 1000 in W38 and 100 in W41 and W42; b 200 and c 600 in W42
    team t2 (org o1): d 50, e 50, f 80 in W42 (f merged one 12-line change, deployed)
    g (not in people) 10 in W42. Built once for the module (every group size counts here: the
    smallest-group rule has its own test): the tests only read it."""
    con = new_connection()
    insert(con, "people", [dict(user_id=u, team="t1", org="o1") for u in "abc"]
           + [dict(user_id=u, team="t2", org="o1") for u in "def"])
    usage = [("a", W38, 1000), ("a", W41, 100), ("a", W42, 100), ("b", W42, 200), ("c", W42, 600),
             ("d", W42, 50), ("e", W42, 50), ("f", W42, 80), ("g", W42, 10)]
    insert(con, "token_usage", [
        dict(user_id=u, session_id=f"{u}-{w}", ts=f"{w} 09:00:00", input_tokens=t, cost_usd=t / 100)
        for u, w, t in usage])
    insert(con, "changes", [dict(change_id="f1", author_id="f", merged_at="2026-10-13 12:00", lines_added=12)])
    insert(con, "deployments", [dict(deployed_at="2026-10-13 13:00", change_ids=["f1"])])
    build(con, min_peer_people=1, min_own_weeks=1, min_company_people=1)
    yield con
    con.close()


def baseline(con, scope, group, week_start, feature):
    return one(con, f"""SELECT median, mad, peers FROM peer_baselines WHERE scope = '{scope}'
                        AND group_name = '{group}' AND week_start = '{week_start}' AND feature = '{feature}'""")


def test_baselines_over_the_trailing_four_weeks(peers):
    # t1 in W42: W39-W42 holds a 100 (W41), a 100, b 200, c 600; a's 1000 in W38 is out of the window.
    # median 150; deviations 50 50 50 450 -> MAD 50; peers counts people (a, b, c)
    assert baseline(peers, "team", "t1", W42, "tokens") == dict(median=150.0, mad=50.0, peers=3)
    # t1 in W41: W38-W41 holds a 1000 and a 100: median 550, MAD 450
    assert baseline(peers, "team", "t1", W41, "tokens") == dict(median=550.0, mad=450.0, peers=1)
    # o1 in W42: 50 50 80 100 100 200 600 -> median 100; deviations 50 50 20 0 0 100 500 -> MAD 50
    assert baseline(peers, "org", "o1", W42, "tokens") == dict(median=100.0, mad=50.0, peers=6)
    assert baseline(peers, "team", "t2", W42, "tokens") == dict(median=50.0, mad=0.0, peers=3)
    assert baseline(peers, "team", "unassigned", W42, "tokens") == dict(median=10.0, mad=0.0, peers=1)
    # NULL values are left out: only f has a deployed change
    assert baseline(peers, "team", "t2", W42, "tokens_per_deployed_change") == dict(median=80.0, mad=0.0, peers=1)
    # a week with no user-week of the group has no baseline (t1 had none in W39 or W40)
    assert rows(peers, "SELECT DISTINCT week_start FROM peer_baselines WHERE group_name = 't1' ORDER BY 1") == [
        dict(week_start=W38), dict(week_start=W41), dict(week_start=W42)]
    # every peer feature with a value somewhere (no session here fed a deployed change: no shipped
    # lines; no prompt reports lines kept: no repeats known to have kept nothing)
    assert {r["feature"] for r in rows(peers, "peer_baselines")} == set(PEER_FEATURES) - {
        "tokens_per_shipped_line", "exact_repeat_unkept_share_week"}


def test_peer_weeks_setting(con):
    insert(con, "people", [dict(user_id=u, team="t1", org="o1") for u in "ab"])
    insert(con, "token_usage", [
        dict(user_id="a", session_id="a1", ts="2026-09-15 09:00", input_tokens=1000),  # W38
        dict(user_id="a", session_id="a2", ts="2026-10-13 09:00", input_tokens=100),   # W42
        dict(user_id="b", session_id="b1", ts="2026-10-13 09:00", input_tokens=300),   # W42
    ])
    build(con, "peer_baselines", peer_weeks=5)  # W38-W42: 100 300 1000 -> median 300, deviations 200 0 700 -> MAD 200
    assert baseline(con, "team", "t1", W42, "tokens") == dict(median=300.0, mad=200.0, peers=2)
    build(con, "peer_baselines", peer_weeks=1)  # W42 only: 100 300 -> median 200, MAD 100
    assert baseline(con, "team", "t1", W42, "tokens") == dict(median=200.0, mad=100.0, peers=2)


def test_a_week_without_the_feature_still_gets_its_windows_baseline(con):
    # a's change deployed in W41 gives tokens_per_deployed_change 100 there; W42 has no deployed
    # change (no value), yet its team and own windows hold W41's value
    insert(con, "people", [dict(user_id="a", team="t1", org="o1")])
    insert(con, "token_usage", [
        dict(user_id="a", session_id="a1", ts="2026-10-06 09:00", input_tokens=100),   # W41
        dict(user_id="a", session_id="a2", ts="2026-10-13 09:00", input_tokens=300),   # W42
    ])
    insert(con, "changes", [dict(change_id="c1", author_id="a", merged_at="2026-10-06 12:00", lines_added=10)])
    insert(con, "deployments", [dict(deployed_at="2026-10-06 13:00", change_ids=["c1"])])
    build(con, "peer_baselines", min_peer_people=1, min_own_weeks=1, min_company_people=1)
    for scope, group in (("team", "t1"), ("company", "company"), ("own", "a")):
        assert baseline(con, scope, group, W42, "tokens_per_deployed_change") == dict(median=100.0, mad=0.0, peers=1)
    # own: W42's window is W38-W41 (tokens 100); W41's holds nothing before it: no row
    assert baseline(con, "own", "a", W42, "tokens") == dict(median=100.0, mad=0.0, peers=1)
    assert rows(con, f"SELECT * FROM peer_baselines WHERE scope = 'own' AND week_start = '{W41}'") == []


def test_robust_z_against_team_and_org(peers):
    c = one(peers, f"SELECT * FROM user_week_peer_features WHERE user_id = 'c' AND week_start = '{W42}'")
    assert (c["tokens_team_median"], c["tokens_org_median"]) == (150.0, 100.0)
    assert c["tokens_team_z"] == pytest.approx((600 - 150) / (1.4826 * 50))   # 6.07
    assert c["tokens_org_z"] == pytest.approx((600 - 100) / (1.4826 * 50))    # 6.74
    assert c["cost_usd_team_z"] == pytest.approx((6.0 - 1.5) / (1.4826 * 0.5))


def test_robust_z_mad_floor(peers):
    f = one(peers, f"SELECT * FROM user_week_peer_features WHERE user_id = 'f' AND week_start = '{W42}'")
    # t2 tokens 50 50 80: median 50, MAD 0 -> floored at 5% of 50 = 2.5
    assert f["tokens_team_z"] == pytest.approx((80 - 50) / (1.4826 * 2.5))
    # t2 merged changes 0 0 1: median 0, MAD 0 -> floored at the smallest spread of a count, 0.5
    assert f["merged_changes_team_median"] == 0.0
    assert f["merged_changes_team_z"] == pytest.approx(1 / (1.4826 * PEER_FEATURES["merged_changes"]))
    d = one(peers, f"SELECT * FROM user_week_peer_features WHERE user_id = 'd' AND week_start = '{W42}'")
    assert d["tokens_team_z"] == 0.0
    assert d["merged_changes_team_z"] == 0.0                 # identical to the median: 0, not a division by 0
    assert d["tokens_per_deployed_change_team_z"] is None     # d has no deployed change
    assert d["tokens_per_deployed_change_team_median"] == 80.0


def test_user_week_peer_features_columns(peers):
    uw = rows(peers, "SELECT * FROM user_week_features ORDER BY user_id, week_start")
    upf = rows(peers, "SELECT * FROM user_week_peer_features ORDER BY user_id, week_start")
    assert [{k: r[k] for k in uw[0]} for r in upf] == uw  # every user-week, every column, unchanged
    extra = [name for name in upf[0] if name not in uw[0]]
    assert extra == [f"{f}_{level}_{kind}" for f in PEER_FEATURES for level in PEER_LEVELS for kind in ("median", "z")
                     ] + ["tokens_per_merged_line_company_ratio", "unmerged_excess_share", "unmerged_excess_share_3w", "active_weeks_3w", "unmerged_token_share_3w",
                          "merged_changes_3w", "deploying_repo_merged_changes_3w"] + [name for name in rows(peers, "team_week_features")[0]
                                                  if name not in ("team", "week_start")]
    g = one(peers, "SELECT team, org, tokens_team_median, tokens_org_median, tokens_team_z "
                   "FROM user_week_peer_features WHERE user_id = 'g'")
    assert g == dict(team="unassigned", org="unassigned", tokens_team_median=10.0, tokens_org_median=10.0,
                     tokens_team_z=0.0)


def test_company_and_own_history_baselines(peers):
    # company in W42: every user-week of W39-W42, as the org plus g: 10 50 50 80 100 100 200 600 -> median 90
    assert baseline(peers, "company", "company", W42, "tokens")["median"] == 90.0
    assert baseline(peers, "company", "company", W42, "tokens")["peers"] == 7
    # a's own history in W42: the previous 6 weeks, W42 left out: 1000 (W38) and 100 (W41) -> median 550
    assert baseline(peers, "own", "a", W42, "tokens") == dict(median=550.0, mad=450.0, peers=2)
    # in W41: W38 only; in W38 nothing before: no own baseline
    assert baseline(peers, "own", "a", W41, "tokens") == dict(median=1000.0, mad=0.0, peers=1)
    assert rows(peers, f"SELECT * FROM peer_baselines WHERE scope = 'own' AND group_name = 'a' AND week_start = '{W38}'") == []
    a = one(peers, f"SELECT * FROM user_week_peer_features WHERE user_id = 'a' AND week_start = '{W42}'")
    assert a["tokens_own_median"] == 550.0
    assert a["tokens_own_z"] == pytest.approx((100 - 550) / (1.4826 * 450))  # below its own usual
    assert a["tokens_company_z"] == pytest.approx((100 - 90) / (1.4826 * 40))  # deviations 80 40 40 10 10 10 110 510


def test_a_baseline_of_too_few_people_or_weeks_is_no_baseline(con):
    insert(con, "people", [dict(user_id=u, team="t1", org="o1") for u in "abc"])
    insert(con, "token_usage", [
        dict(user_id=u, session_id=f"{u}{w}", ts=f"{w} 09:00", input_tokens=100 * (i + 1))
        for i, u in enumerate("abc") for w in (W41, W42)])
    build(con, min_peer_people=3, min_own_weeks=2)
    c = one(con, f"SELECT * FROM user_week_peer_features WHERE user_id = 'c' AND week_start = '{W42}'")
    assert c["tokens_team_median"] == 200.0  # 3 people: enough
    assert c["tokens_own_median"] is None and c["tokens_own_z"] is None  # one previous week: not enough
    build(con, min_peer_people=4, min_own_weeks=1)
    c = one(con, f"SELECT * FROM user_week_peer_features WHERE user_id = 'c' AND week_start = '{W42}'")
    assert c["tokens_team_median"] is None and c["tokens_team_z"] is None
    assert c["tokens_own_median"] == 300.0


def test_tokens_per_merged_line_as_a_multiple_of_the_companys(con):
    # W41: a 1000 tokens for 10 merged lines, b 100 for 10, c 50 for 10, d merged nothing (no value)
    insert(con, "token_usage", [dict(user_id=u, session_id=u, ts=f"{W41} 09:00", input_tokens=t)
                                for u, t in (("a", 1000), ("b", 100), ("c", 50), ("d", 500))])
    insert(con, "changes", [dict(change_id=f"{u}1", author_id=u, merged_at=f"{W41} 12:00", lines_added=10)
                            for u in "abc"])
    build(con, min_peer_people=1, min_own_weeks=1, min_company_people=1)
    got = {r["user_id"]: (r["tokens_per_merged_line"], r["tokens_per_merged_line_company_median"],
                          r["tokens_per_merged_line_company_ratio"])
           for r in rows(con, "user_week_peer_features")}
    assert got == {"a": (100.0, 10.0, 10.0), "b": (10.0, 10.0, 1.0), "c": (5.0, 10.0, 0.5), "d": (None, 10.0, None)}


def test_unmerged_work_beyond_the_companys_usual(con):
    # W41: a spends 1000 tokens in a session that fed nothing (share 1), b 100 merged and 100 not (0.5),
    # c 100 merged (0): the company's median share is 0.5
    sessions = [("a", "a1", 1000), ("b", "b1", 100), ("b", "b2", 100), ("c", "c1", 100)]
    insert(con, "token_usage", [dict(user_id=u, session_id=s, ts=f"{W41} 09:00", input_tokens=t) for u, s, t in sessions])
    insert(con, "changes", [dict(change_id=f"{s}-change", author_id=u, merged_at=f"{W41} 12:00", ai_session_ids=[s])
                            for u, s in (("b", "b1"), ("c", "c1"))])
    build(con, min_peer_people=1, min_own_weeks=1, min_company_people=1)
    got = {r["user_id"]: (r["unmerged_token_share_company_median"], r["unmerged_excess_share"], r["unmerged_excess_share_3w"])
           for r in rows(con, "user_week_peer_features")}
    # (share - 0.5) / (1 - 0.5): all of what the usual person would have merged, none of it, below the usual
    assert got == {"a": (0.5, 1.0, 1.0), "b": (0.5, 0.0, 0.0), "c": (0.5, -1.0, -1.0)}
    build(con, min_peer_people=1, min_own_weeks=1, min_company_people=4)  # 3 people: no company baseline
    assert {r["unmerged_excess_share"] for r in rows(con, "user_week_peer_features")} == {None}


def test_a_company_too_small_has_no_company_baseline(peers):
    build(peers, min_peer_people=1, min_own_weeks=1, min_company_people=8)  # 7 people used AI in W39-W42
    c = one(peers, f"SELECT * FROM user_week_peer_features WHERE user_id = 'c' AND week_start = '{W42}'")
    assert c["tokens_company_median"] is None and c["tokens_company_z"] is None
    assert c["tokens_team_median"] == 150.0
    build(peers, min_peer_people=1, min_own_weeks=1, min_company_people=1)  # as the module built it


def test_last_three_calendar_weeks(con):
    # u1: W39 100 tokens (merged), W40 300 (unmerged), W41 300 merged + 300 unmerged, no W42, W43 100 (unmerged)
    W43 = date(2026, 10, 19)
    sessions = [("s39", W39, 100), ("s40", W40, 300), ("s41a", W41, 300), ("s41b", W41, 300), ("s43", W43, 100)]
    insert(con, "token_usage", [dict(session_id=s, ts=f"{w} 09:00:00", input_tokens=t) for s, w, t in sessions])
    insert(con, "changes", [dict(change_id="c39", merged_at=f"{W39} 12:00", ai_session_ids=["s39"]),
                            dict(change_id="c41", merged_at=f"{W41} 12:00", ai_session_ids=["s41a"])])
    build(con, upto="user_week_peer_features")
    got = {r["week_start"]: (r["active_weeks_3w"], r["unmerged_token_share_3w"], r["merged_changes_3w"])
           for r in rows(con, "user_week_peer_features")}
    assert got == {
        W39: (1, 0.0, 1),
        W40: (2, pytest.approx(300 / 400), 1),
        W41: (3, pytest.approx(600 / 1000), 2),
        W43: (2, pytest.approx(400 / 700), 1),  # W41 and W43: a week without AI use has no row
    }
