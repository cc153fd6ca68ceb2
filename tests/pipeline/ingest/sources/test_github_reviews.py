"""GitHub pull request reviews (GET /repos/OWNER/REPO/pulls/N/reviews) -> reviews."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb

from pipeline.ingest.sources.github_reviews import read_github_reviews
from tests.pipeline.conftest import FIXTURES, InputDir, rejected, run_load, table

REVIEWS = FIXTURES / "sources" / "github_reviews"


def review(id: int, state: str, **fields) -> dict:
    """A review object as the API returns it (fields override; None leaves a field out)."""
    record = {
        "id": id, "node_id": f"PRR_{id}", "user": {"login": "bob-gh", "id": 2, "type": "User"}, "body": "",
        "state": state, "html_url": f"https://github.com/shop/checkout/pull/17#pullrequestreview-{id}",
        "pull_request_url": "https://api.github.com/repos/shop/checkout/pulls/17", "author_association": "MEMBER",
        "submitted_at": "2026-10-06T12:00:00Z", "commit_id": "9e8a83efd6cf6d726117cd07d26ac21973d6e779",
    }
    record.update(fields)
    return {k: v for k, v in record.items() if v is not None}


def read(tmp_path: Path, records: list, name: str = "reviews.jsonl") -> tuple[list[tuple], list[tuple]]:
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    out = read_github_reviews(path)
    return out.rows["reviews"].drop("__raw").rows(), out.rejects.select("position", "reason").rows()


def test_review_pages_become_reviews_rows() -> None:
    # what a loop of `gh api --paginate .../pulls/$n/reviews` writes: one page per pull request, back to back
    out = read_github_reviews(REVIEWS / "shop" / "reviews.json")
    assert out.rows["reviews"].drop("__raw").rows() == [
        (1, "shop/checkout#17/reviews/80", "shop/checkout#17", "bob-gh", "2026-10-06T14:10:00Z", "approved",
         ["5e0d6f2a-review-bob-0001"], None),  # comments: not in the review object, unknown (not 0)
        (2, "shop/checkout#17/reviews/81", "shop/checkout#17", "carol-gh", "2026-10-06T11:00:00Z", "changes_requested", [], None),
        (3, "shop/checkout#17/reviews/82", "shop/checkout#17", "bob-gh", "2026-10-06T12:30:00Z", "commented", ["s-1", "s-2"], None),
        # #18's page is empty; a dismissed review keeps its reviewer credit, as a comment
        (4, "shop/search#19/reviews/90", "shop/search#19", "alice-gh", "2026-10-07T08:00:00Z", "commented", [], None),
        (6, "shop/search#19/reviews/92", "shop/search#19", None, "2026-10-07T08:30:00Z", "approved", [], None),  # ghost user
    ]
    assert out.rejects.select("position", "reason").rows() == [
        (5, "pending review (not submitted)"), (7, "not a pull request review"), (8, "not a JSON object"),
    ]


def test_change_id_is_the_one_github_pulls_gives_the_pull_request(tmp_path: Path) -> None:
    from pipeline.ingest.sources.github import read_github_pulls

    pull = {"number": 17, "user": {"login": "alice-gh"}, "base": {"repo": {"full_name": "shop/checkout"}},
            "head": {"sha": "9e8a83efd6cf6d726117cd07d26ac21973d6e779"}, "merged_at": None, "body": None}
    (tmp_path / "pulls.json").write_text(json.dumps([pull]))
    rows, _ = read(tmp_path, [review(1, "APPROVED")])
    assert rows[0][2] == read_github_pulls(tmp_path / "pulls.json").rows["changes"]["change_id"][0] == "shop/checkout#17"


def test_enterprise_urls_and_a_review_without_api_url(tmp_path: Path) -> None:
    rows, rejects = read(tmp_path, [
        review(1, "APPROVED", pull_request_url="https://ghe.example.com/api/v3/repos/platform/api/pulls/7"),
        review(2, "COMMENTED", pull_request_url=None, html_url="https://ghe.example.com/platform/api/pull/8#pullrequestreview-2"),
        review(3, "COMMENTED", pull_request_url="https://api.github.com/repos/shop/checkout/issues/17", html_url=None),
        review(4, "COMMENTED", pull_request_url=None, html_url=None),
    ])
    assert [r[1:3] for r in rows] == [("platform/api#7/reviews/1", "platform/api#7"), ("platform/api#8/reviews/2", "platform/api#8")]
    assert rejects == [(3, "not a pull request review"), (4, "not a pull request review")]


def test_states_sessions_and_what_is_left_to_the_loader(tmp_path: Path) -> None:
    rows, rejects = read(tmp_path, [
        review(1, "approved", body="Ship it.\r\nAI-Session: a-1\r\nai-session: b-2 c-3\r\n"),  # case-insensitive
        review(2, "DISMISSED", body="AI-Session: d-4"),  # the work stands, the verdict does not
        review(3, "PENDING", submitted_at=None),
        review(4, "FROZEN"),  # unknown: the loader says so
        review(5, "COMMENTED", submitted_at=None),  # submitted, but no time: the loader's missing field
        '{"id": 6, "state": "APPROVED"',
        review(7, "APPROVED", user=None),
        {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"},  # an error body saved by mistake
    ])
    assert [(r[0], r[5], r[6]) for r in rows] == [
        (1, "approved", ["a-1", "b-2", "c-3"]), (2, "commented", ["d-4"]), (4, "frozen", []), (5, "commented", []),
        (7, "approved", []),
    ]
    assert rejects == [(3, "pending review (not submitted)"), (6, "malformed JSON"), (8, "not a pull request review")]


def test_loaded_through_the_loader(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    for name in ("shop/reviews.json", "reviews.jsonl"):
        target = inputs.path / "sources" / "github_reviews" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REVIEWS / name, target)
    inputs.write("people.csv", "user_id,team,aliases\nbob,payments,bob-gh\n")
    summary = run_load(con, inputs.path)

    assert table(con, "reviews", "review_id, change_id, reviewer_id, state, ai_session_ids, comments") == [
        ("platform/api#7/reviews/95", "platform/api#7", "erin", "commented", ["ghes-sess-1"], None),
        ("platform/api#7/reviews/97", "platform/api#7", "frank", "approved", [], None),
        # the reviewer's login resolves through the people aliases, as a pull request author's does
        ("shop/checkout#17/reviews/80", "shop/checkout#17", "bob", "approved", ["5e0d6f2a-review-bob-0001"], None),
        ("shop/checkout#17/reviews/81", "shop/checkout#17", "carol-gh", "changes_requested", [], None),
        ("shop/checkout#17/reviews/82", "shop/checkout#17", "bob", "commented", ["s-1", "s-2"], None),
        ("shop/search#19/reviews/90", "shop/search#19", "alice-gh", "commented", [], None),
    ]
    assert rejected(con, "reviews") == [  # in path order: github_reviews/reviews.jsonl, then github_reviews/shop/
        ("reviews.jsonl", 2, "malformed JSON"),
        ("reviews.jsonl", 3, "unknown state: submitted"),
        ("reviews.json", 5, "pending review (not submitted)"),
        ("reviews.json", 6, "missing required field: reviewer_id"),
        ("reviews.json", 7, "not a pull request review"),
        ("reviews.json", 8, "not a JSON object"),
    ]
    loaded = summary.datasets["reviews"]
    assert (loaded.files_seen, loaded.rows_given, loaded.rows_loaded, loaded.rows_rejected) == (2, 12, 6, 6)
    # a rerun changes nothing; a later export repeating the reviews adds only the new one
    run_load(con, inputs.path, "run-2")
    assert table(con, "reviews", "count(*)") == [(6,)]
    newer = review(98, "APPROVED", pull_request_url="https://api.github.com/repos/shop/search/pulls/19")
    inputs.write("sources/github_reviews/again.jsonl", (REVIEWS / "reviews.jsonl").read_text() + json.dumps(newer) + "\n")
    run_load(con, inputs.path, "run-3")
    assert table(con, "reviews", "count(*)") == [(7,)]
    assert [r[1:] for r in rejected(con, "reviews") if r[0] == "again.jsonl"] == [
        (1, "duplicate"), (2, "malformed JSON"), (3, "unknown state: submitted"), (4, "duplicate"),
    ]
