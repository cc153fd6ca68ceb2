"""GitHub pull requests -> changes; deployments (statuses embedded, or Four Keys rows) -> deployments."""
from __future__ import annotations

import json
import shutil

import duckdb

from pipeline.sources.github import read_github_deployments, read_github_pulls
from tests.pipeline.conftest import FIXTURES, InputDir, rejected, run_load, table

GITHUB = FIXTURES / "sources"
MERGE_17 = "5d1a0b7c9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b"


def test_pull_requests_become_changes() -> None:
    out = read_github_pulls(GITHUB / "github_pulls" / "pulls.json")  # two pages back to back, as gh --paginate writes
    assert out.rows["changes"].drop("__raw").rows() == [
        (1, "shop/checkout#17", "shop/checkout", "alice-gh", "2026-10-06T15:20:00Z", "41", "6",
         ["1f0c7a52-0d55-4c8e-9f0e-5a1d6c1e0a01"], [MERGE_17, "9e8a83efd6cf6d726117cd07d26ac21973d6e779"],
         ["Claude <noreply@anthropic.com>"]),
        (2, "shop/checkout#18", "shop/checkout", "bob-gh", None, None, None, [], ["bbbb000000000000000000000000000000000002"], []),
        (3, "shop/search#19", "shop/search", "carol-gh", "2026-10-07T09:00:00Z", None, None, ["s-200", "s-201"],
         ["cccc000000000000000000000000000000000003", "dddd000000000000000000000000000000000004"], []),
    ]
    assert out.rejects.select("position", "reason").rows() == [(4, "not a pull request"), (5, "not a JSON object")]


def test_deployments_take_their_newest_finished_status() -> None:
    out = read_github_deployments(GITHUB / "github_deployments" / "deployments.jsonl")
    assert out.rows["deployments"].drop("__raw").rows() == [
        (1, "shop/checkout/deployments/901", "shop/checkout", "2026-10-06T18:05:00Z", "failure", [MERGE_17]),
        (2, "shop/checkout/deployments/902", "shop/checkout", "2026-10-06T19:35:00Z", "success", [MERGE_17]),  # inactive: superseded
    ]
    assert out.rejects.select("position", "reason").rows() == [
        (3, "unfinished deployment: in_progress"), (4, "no deployment status"), (5, "malformed JSON"),
    ]


def test_four_keys_rows_name_the_commits_they_shipped() -> None:
    out = read_github_deployments(GITHUB / "github_deployments" / "shop" / "checkout" / "four_keys.json")
    assert out.rows["deployments"].drop("__raw").rows() == [
        (1, "shop/checkout/deployments/fk-1", "shop/checkout", "2026-10-07T12:00:00Z", "success",
         ["cccc000000000000000000000000000000000003", "dddd000000000000000000000000000000000004"]),  # repo from the folder
    ]
    assert out.rejects.select("position", "reason").rows() == [(2, "not a deployment")]


def test_a_deployment_ships_the_changes_its_commit_identifies(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    """The sha names change #17 (its merge commit); the next successful deploy ships #17's successors up to its own sha."""
    def pr(number, merged_at, sha):
        return {"number": number, "user": {"login": "alice-gh"}, "merged_at": merged_at, "merge_commit_sha": sha,
                "head": {"sha": f"{number:040d}"}, "base": {"repo": {"full_name": "shop/checkout"}}, "body": None}

    def deploy(id, sha, state, at):
        return {"id": id, "sha": sha, "repository_url": "https://api.github.com/repos/shop/checkout",
                "statuses": [{"state": state, "created_at": at}]}

    inputs.write("sources/github_pulls/pulls.json", json.dumps([
        pr(17, "2026-10-05T10:00:00Z", "a" * 40), pr(18, "2026-10-05T11:00:00Z", "b" * 40),
        pr(19, "2026-10-05T12:00:00Z", "c" * 40), pr(20, "2026-10-06T12:00:00Z", "d" * 40),
    ]))
    inputs.write("sources/github_deployments/1.json", json.dumps([
        deploy(1, "a" * 40, "success", "2026-10-05T10:30:00Z"),
        deploy(2, "c" * 40, "failure", "2026-10-05T12:30:00Z"),  # shipped nothing: #18 and #19 wait for the next
        deploy(3, "C" * 40, "success", "2026-10-05T13:00:00Z"),
    ]))
    inputs.write("deployments.jsonl", "")  # the sources fill the dataset
    run_load(con, inputs.path)
    assert table(con, "deployments", "deployment_id, change_ids") == [
        ("shop/checkout/deployments/1", ["shop/checkout#17"]),  # no earlier deployment: only its own commit's change
        ("shop/checkout/deployments/2", ["shop/checkout#18", "shop/checkout#19"]),
        ("shop/checkout/deployments/3", ["shop/checkout#18", "shop/checkout#19"]),
    ]
    # change #20 arrives with a deployment of its merge commit in a later run: the earlier rows stay, the new one links
    inputs.write("sources/github_deployments/2.json", json.dumps([deploy(4, "d" * 40, "success", "2026-10-06T13:00:00Z")]))
    run_load(con, inputs.path, "run-2")
    assert table(con, "deployments WHERE deployment_id LIKE '%/4'", "change_ids") == [(["shop/checkout#20"],)]
    assert table(con, "deployment_commits", "count(*)") == [(4,)]


def test_loaded_through_the_loader(con: duckdb.DuckDBPyConnection, inputs: InputDir) -> None:
    for name in ("github_pulls/pulls.json", "github_deployments/deployments.jsonl"):
        target = inputs.path / "sources" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(GITHUB / name, target)
    run_load(con, inputs.path)
    assert table(con, "changes WHERE change_id LIKE 'shop/%'", "change_id, author_id, lines_added") == [
        ("shop/checkout#17", "alice-gh", 41), ("shop/checkout#18", "bob-gh", None), ("shop/search#19", "carol-gh", None),
    ]
    assert table(con, "deployments WHERE repo = 'shop/checkout'", "deployment_id, status, change_ids") == [
        ("shop/checkout/deployments/901", "failure", ["shop/checkout#17"]),
        ("shop/checkout/deployments/902", "success", ["shop/checkout#17"]),
    ]
    assert rejected(con) == [
        ("deployments.jsonl", 3, "unfinished deployment: in_progress"),
        ("deployments.jsonl", 4, "no deployment status"),
        ("deployments.jsonl", 5, "malformed JSON"),
        ("pulls.json", 4, "not a pull request"),
        ("pulls.json", 5, "not a JSON object"),
    ]
