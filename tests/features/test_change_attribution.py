"""change_attribution (one row per linked change_id) and deployment_attribution (one row per
successful deployment): docs/features.md, "change_attribution"."""
import pytest

from tests.features.conftest import build, by, insert, new_connection, rows


@pytest.fixture(scope="module")
def world():
    """s1 (u1, repo-a, 1000 tokens, $2) is named by `named` and by `inferred` (1.0 each);
    s2 (u1, repo-b, 100 tokens, $1) is named by `inferred` (1.0, its only link); `lonely` has no session.
    Built once for the module: the tests only read it."""
    con = new_connection()
    insert(con, "token_usage", [
        dict(session_id="s1", ts="2026-10-05 09:00", input_tokens=600, output_tokens=400, cost_usd=2.0),
        dict(session_id="s2", ts="2026-10-06 09:00", input_tokens=100, cost_usd=1.0),
    ])
    insert(con, "invocations", [
        dict(session_id="s1", ts="2026-10-05 10:00", repo="repo-a"),
        dict(session_id="s2", ts="2026-10-06 10:00", repo="repo-b"),
    ])
    insert(con, "changes", [
        dict(change_id="named", author_id="u2", repo="repo-z", ai_session_ids=["s1"], merged_at="2026-10-05 11:00"),
        # also in s1's repository 30 h after it ends, but the names are the evidence
        dict(change_id="inferred", repo="repo-a", merged_at="2026-10-06 16:00", ai_session_ids=["s1", "s2"]),
        dict(change_id="lonely", repo="repo-q", merged_at="2026-10-06 16:00"),
    ])
    insert(con, "deployments", [
        dict(deployment_id="d-fail", deployed_at="2026-10-06 17:00", status="failure", change_ids=["named"]),
        dict(deployment_id="d1", deployed_at="2026-10-06 18:00", change_ids=["named", "lonely"]),
        dict(deployment_id="d2", deployed_at="2026-10-07 18:00", change_ids=["named", "inferred"]),
        dict(deployment_id="d-none", deployed_at="2026-10-07 19:00", change_ids=["lonely"]),
    ])
    build(con, upto="deployment_attribution")
    yield con
    con.close()


def test_change_attribution(world):
    got = by(world, "change_attribution", "change_id")
    assert set(got) == {"named", "inferred"}  # `lonely` has no link, so no row
    named, inferred = got["named"], got["inferred"]
    # s1 splits 1.0 : 1.0 -> weights 0.5 and 0.5; s2 gives all of itself to `inferred`
    assert named["sessions"] == 1
    assert named["attributed_tokens"] == pytest.approx(1000 * 0.5)
    assert named["attributed_cost_usd"] == pytest.approx(2.0 * 0.5)
    assert (named["deployed"], named["first_deployment_id"]) == (True, "d1")
    assert inferred["sessions"] == 2
    assert inferred["attributed_tokens"] == pytest.approx(1000 * 0.5 + 100)
    assert inferred["attributed_cost_usd"] == pytest.approx(2.0 * 0.5 + 1.0)
    assert (inferred["deployed"], inferred["first_deployment_id"]) == (True, "d2")


def test_attribution_counts_each_session_once(world):
    # every linked session's tokens are attributed once in total: 1000 + 100
    [(tokens, cost)] = world.sql(
        "SELECT sum(attributed_tokens), sum(attributed_cost_usd) FROM change_attribution").fetchall()
    assert tokens == pytest.approx(1100)
    assert cost == pytest.approx(3.0)


def test_deployment_attribution_counts_changes_shipped_first(world):
    assert rows(world, "SELECT * FROM deployment_attribution ORDER BY deployment_id",
                "deployment_id", "ai_changes_first_shipped") == [
        dict(deployment_id="d-none", ai_changes_first_shipped=0),
        dict(deployment_id="d1", ai_changes_first_shipped=1),  # `named` (`lonely` has no AI)
        dict(deployment_id="d2", ai_changes_first_shipped=1),  # `inferred`; `named` was shipped by d1
    ]  # d-fail is no successful deployment
    got = by(world, "deployment_attribution", "deployment_id", "attributed_tokens", "attributed_cost_usd")
    assert got["d1"]["attributed_tokens"] == pytest.approx(500)
    assert got["d2"]["attributed_tokens"] == pytest.approx(600)   # 500 + 100
    assert got["d2"]["attributed_cost_usd"] == pytest.approx(2.0)  # 1.0 + 1.0
    assert got["d-none"] == dict(attributed_tokens=0, attributed_cost_usd=0)
