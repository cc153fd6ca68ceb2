"""session_spend and session_repo_prompts: a session's spend per week, model and client, and its
prompts per week and repository (docs/features.md), the inputs of waste_by_dimension_week."""
from datetime import date

from tests.features.conftest import build, insert, rows


def test_spend_per_session_week_model_and_client(con):
    insert(con, "token_usage", [
        dict(ts="2026-10-11 23:00", model="m1", tool="claude-code", input_tokens=100, output_tokens=10, cost_usd=1.0),
        dict(ts="2026-10-11 23:30", model="m1", tool="claude-code", input_tokens=50, cache_read_tokens=5, cost_usd=None),
        dict(ts="2026-10-11 23:40", model="m2", tool=None, input_tokens=7, cost_usd=0.5),
        # the same session past Sunday midnight: the next ISO week
        dict(ts="2026-10-12 00:10", model="m1", tool="claude-code", input_tokens=1, cost_usd=0.25),
    ])
    build(con, upto="session_spend")
    assert rows(con, "SELECT * FROM session_spend ORDER BY week_start, model") == [
        # an unpriced request adds its tokens and $0
        dict(user_id="u1", session_id="s1", week_start=date(2026, 10, 5), model="m1", tool="claude-code",
             cost_usd=1.0, tokens=165),
        dict(user_id="u1", session_id="s1", week_start=date(2026, 10, 5), model="m2", tool="(unknown)",
             cost_usd=0.5, tokens=7),
        dict(user_id="u1", session_id="s1", week_start=date(2026, 10, 12), model="m1", tool="claude-code",
             cost_usd=0.25, tokens=1),
    ]


def test_prompts_per_session_week_and_repository(con):
    insert(con, "invocations", [
        dict(ts="2026-10-05 09:00", repo="repo-a"),
        dict(ts="2026-10-05 09:05", repo="repo-a"),
        dict(ts="2026-10-05 09:10", repo=None),
        dict(ts="2026-10-05 09:15", session_id="s2", repo="repo-b"),
    ])
    build(con, upto="session_repo_prompts")
    assert rows(con, "SELECT * FROM session_repo_prompts ORDER BY session_id, repo NULLS FIRST") == [
        dict(session_id="s1", week_start=date(2026, 10, 5), repo=None, prompts=1),
        dict(session_id="s1", week_start=date(2026, 10, 5), repo="repo-a", prompts=2),
        dict(session_id="s2", week_start=date(2026, 10, 5), repo="repo-b", prompts=1),
    ]
