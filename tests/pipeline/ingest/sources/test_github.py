"""GitHub pull requests -> changes; deployments (statuses embedded, or Four Keys rows) -> deployments."""
from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from pipeline.settings import ConfigError, Settings
from pipeline.ingest.sources.github import read_github_deployments, read_github_pulls
from tests.pipeline.conftest import FIXTURES, InputDir, rejected, run_load, table

GITHUB = FIXTURES / "sources"
MERGE_17 = "5d1a0b7c9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b"


def test_pull_requests_become_changes() -> None:
    out = read_github_pulls(GITHUB / "github_pulls" / "pulls.json")  # two pages back to back, as gh --paginate writes
    assert out.rows["changes"].drop("__raw").rows() == [
        (1, "shop/checkout#17", "shop/checkout", "alice-gh", "2026-10-06T15:20:00Z", "41", "6",
         ["1f0c7a52-0d55-4c8e-9f0e-5a1d6c1e0a01"], [MERGE_17, "9e8a83efd6cf6d726117cd07d26ac21973d6e779"], "heads",
         ["Claude <noreply@anthropic.com>"]),
        (2, "shop/checkout#18", "shop/checkout", "bob-gh", None, None, None, [], ["bbbb000000000000000000000000000000000002"],
         "heads", []),
        (3, "shop/search#19", "shop/search", "carol-gh", "2026-10-07T09:00:00Z", None, None, ["s-200", "s-201"],
         ["cccc000000000000000000000000000000000003", "dddd000000000000000000000000000000000004"], "heads", []),
    ]
    assert out.rejects.select("position", "reason").rows() == [(4, "not a pull request"), (5, "not a JSON object")]


def test_a_pull_request_with_its_commits_embedded_lists_them_all(tmp_path) -> None:
    """`commits` as GET .../pulls/N/commits returns them (sha) or gh pr list --json commits (oid)."""
    base = {"user": {"login": "alice-gh"}, "base": {"repo": {"full_name": "shop/checkout"}}, "body": None,
            "head": {"sha": "C3"}}
    path = tmp_path / "pulls.json"
    path.write_text(json.dumps([
        {**base, "number": 20, "merged_at": "2026-10-06T15:20:00Z", "merge_commit_sha": "M20",
         "commits": [{"sha": "C1"}, {"sha": "C2"}, {"sha": "C3"}]},
        {**base, "number": 21, "merged_at": None, "merge_commit_sha": None, "commits": [{"oid": "C4"}]},
    ]))
    rows = read_github_pulls(path).rows["changes"]
    assert rows.select("change_id", "commit_shas", "commit_shas_scope").rows() == [
        ("shop/checkout#20", ["m20", "c1", "c2", "c3"], "all"),  # the squashed or rebased commits too
        ("shop/checkout#21", ["c4"], "all"),
    ]


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


# --- production filter and status history (GitHub's REST schema: deployments with embedded statuses) ---

def gh_deploy(id: int, statuses: list[tuple[int, str, str]], *, environment: str | None = "production",
              production: bool | None = True) -> dict:
    """A deployment as GET /repos/shop/checkout/deployments returns it, its statuses (id, state,
    created_at) embedded newest first as GET .../statuses lists them; None leaves a field out."""
    deployment = {"id": id, "sha": f"{id:040x}", "ref": "main", "created_at": "2026-10-06T09:00:00Z",
                  "repository_url": "https://api.github.com/repos/shop/checkout", "transient_environment": False,
                  "statuses": [{"id": sid, "state": state, "created_at": at, "environment": environment}
                               for sid, state, at in sorted(statuses, key=lambda s: (s[2], s[0]), reverse=True)]}
    if environment is not None:
        deployment["environment"] = environment
    if production is not None:
        deployment["production_environment"] = production
    return deployment


def read_records(tmp_path, records: list[dict], **options) -> tuple[list[tuple], list[tuple]]:
    """(position, status, deployed_at) rows and (position, reason) rejects of a JSON lines export."""
    path = tmp_path / "deployments.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = read_github_deployments(path, **options)
    return (out.rows["deployments"].select("__position", "status", "deployed_at").rows(),
            out.rejects.select("position", "reason").rows())


def test_only_production_deployments_load(tmp_path) -> None:
    """production_environment decides when given; otherwise the environment name, case-insensitive."""
    ok = [(1, "success", "2026-10-06T10:00:00Z")]
    rows, rejects = read_records(tmp_path, [
        gh_deploy(1, ok, environment="production-eu", production=True),   # flagged production: any name
        gh_deploy(2, ok, environment="production", production=False),     # flagged not production
        gh_deploy(3, ok, environment="PROD", production=None),            # no flag: a listed name
        gh_deploy(4, ok, environment="Live", production=None),
        gh_deploy(5, ok, environment="staging", production=None),
        gh_deploy(6, ok, environment=None, production=None),              # neither: GitHub's default, production
    ])
    assert rows == [(1, "success", "2026-10-06T10:00:00Z"), (3, "success", "2026-10-06T10:00:00Z"),
                    (4, "success", "2026-10-06T10:00:00Z"), (6, "success", "2026-10-06T10:00:00Z")]
    assert rejects == [(2, "not a production environment: production"), (5, "not a production environment: staging")]
    # the list is the adapter's argument: only `staging` now counts (the flag still wins)
    rows, rejects = read_records(tmp_path, [gh_deploy(3, ok, environment="PROD", production=None),
                                            gh_deploy(5, ok, environment="staging", production=None),
                                            gh_deploy(1, ok, environment="x", production=True)], environments=["Staging"])
    assert [r[0] for r in rows] == [2, 3]
    assert rejects == [(1, "not a production environment: PROD")]


def test_inactive_after_success_is_a_superseded_success(tmp_path) -> None:
    rows, rejects = read_records(tmp_path, [gh_deploy(1, [
        (11, "in_progress", "2026-10-06T10:00:00Z"), (12, "success", "2026-10-06T10:05:00Z"),
        (13, "inactive", "2026-10-07T08:00:00Z"),  # a later deployment replaced it
    ])])
    assert rows == [(1, "success", "2026-10-06T10:05:00Z")]
    assert rejects == []


def test_failure_or_error_after_success_is_a_rollback(tmp_path) -> None:
    rows, rejects = read_records(tmp_path, [
        gh_deploy(1, [(11, "success", "2026-10-06T10:05:00Z"), (12, "failure", "2026-10-06T10:30:00Z")]),
        gh_deploy(2, [(21, "success", "2026-10-06T11:05:00Z"), (22, "error", "2026-10-06T11:30:00Z"),
                      (23, "inactive", "2026-10-07T08:00:00Z")]),
        gh_deploy(3, [(31, "in_progress", "2026-10-06T12:00:00Z"), (32, "failure", "2026-10-06T12:05:00Z")]),
        # same created_at: the higher id is the later status, whatever the listed order
        gh_deploy(4, [(42, "failure", "2026-10-06T13:00:00Z"), (41, "success", "2026-10-06T13:00:00Z")]),
        gh_deploy(5, [(52, "success", "2026-10-06T14:00:00Z"), (51, "failure", "2026-10-06T14:00:00Z")]),
    ])
    assert rows == [
        (1, "rolled_back", "2026-10-06T10:05:00Z"),  # deployed_at: when it went live
        (2, "rolled_back", "2026-10-06T11:05:00Z"),
        (3, "failure", "2026-10-06T12:05:00Z"),      # never succeeded: a plain failure
        (4, "rolled_back", "2026-10-06T13:00:00Z"),
        (5, "success", "2026-10-06T14:00:00Z"),
    ]
    assert rejects == []


def test_a_deployment_with_only_inactive_statuses_has_no_outcome(tmp_path) -> None:
    rows, rejects = read_records(tmp_path, [
        gh_deploy(1, [(11, "inactive", "2026-10-07T08:00:00Z")]),
        gh_deploy(2, [(21, "inactive", "2026-10-07T08:00:00Z"), (22, "inactive", "2026-10-08T08:00:00Z")]),
        gh_deploy(3, []),
    ])
    assert rows == []
    assert rejects == [(1, "no outcome: only inactive statuses"), (2, "no outcome: only inactive statuses"),
                       (3, "no deployment status")]


def test_a_running_deployment_is_unfinished(tmp_path) -> None:
    rows, rejects = read_records(tmp_path, [
        gh_deploy(1, [(11, "queued", "2026-10-06T10:00:00Z")]),
        gh_deploy(2, [(21, "failure", "2026-10-06T10:00:00Z"), (22, "pending", "2026-10-06T10:10:00Z")]),  # retried
        gh_deploy(3, [(31, "success", "2026-10-06T10:00:00Z"), (32, "in_progress", "2026-10-06T11:00:00Z"),
                      (33, "inactive", "2026-10-06T12:00:00Z")]),
    ])
    assert rows == []
    assert rejects == [(1, "unfinished deployment: queued"), (2, "unfinished deployment: pending"),
                       (3, "unfinished deployment: in_progress")]


def test_the_configured_environments_reach_the_adapter_through_a_load(
    con: duckdb.DuckDBPyConnection, inputs: InputDir, tmp_path
) -> None:
    config = tmp_path / "goodhart.toml"
    config.write_text('[sources.github_deployments]\nenvironments = ["live", "Canary"]\n')
    settings = Settings.from_file(config)
    assert settings.source_options == {"github_deployments": {"environments": ["live", "Canary"]}}
    ok = [(1, "success", "2026-10-06T10:00:00Z")]
    inputs.jsonl("sources/github_deployments/shop.jsonl", [
        gh_deploy(1, ok, environment="production", production=None),  # the default list's, not this one's
        gh_deploy(2, ok, environment="canary", production=None),
        gh_deploy(3, ok, environment="LIVE", production=None),
        gh_deploy(4, ok, environment="qa", production=True),
    ])
    summary = run_load(con, inputs.path, source_options=settings.source_options)
    assert table(con, "deployments WHERE repo = 'shop/checkout'", "deployment_id, status") == [
        ("shop/checkout/deployments/2", "success"), ("shop/checkout/deployments/3", "success"),
        ("shop/checkout/deployments/4", "success"),
    ]
    assert rejected(con, "deployments") == [("shop.jsonl", 1, "not a production environment: production")]
    assert summary.datasets["deployments"].rows_rejected == 1
    # without settings the adapter's default list applies
    assert Settings().source_options == {"github_deployments": {"environments": ["production", "prod", "live"]}}


@pytest.mark.parametrize("toml", ['environments = "production"', "environments = [1]", 'environments = [""]',
                                  'colours = ["red"]'])
def test_bad_environment_settings_are_refused(toml: str, tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"[sources.github_deployments]\n{toml}\n")
    with pytest.raises(ConfigError, match=r"\[sources.github_deployments\]"):
        Settings.from_file(config)


def test_a_repositorys_first_deployment_ships_what_was_merged_before_it(
    con: duckdb.DuckDBPyConnection, inputs: InputDir,
) -> None:
    """Regression (a generated world exported as vendor files): a repository's first successful
    deployment shipped only the change its commit names, so the changes merged before it counted as
    never deployed."""
    merged = {1: "2026-10-05T10:00:00Z", 2: "2026-10-05T11:00:00Z", 3: "2026-10-05T12:00:00Z"}
    inputs.write("sources/github_pulls/pulls.json", json.dumps([
        {"number": n, "user": {"login": "alice-gh"}, "merged_at": at, "merge_commit_sha": f"{100 + n:040x}",
         "head": {"sha": f"{n:040d}"}, "base": {"repo": {"full_name": "shop/checkout"}}, "body": None}
        for n, at in merged.items()
    ]))
    inputs.write("sources/github_deployments/1.jsonl", "".join(json.dumps(d) + "\n" for d in (
        gh_deploy(102, [(1, "failure", "2026-10-05T11:30:00Z")]),  # #2's merge commit; failed
        gh_deploy(103, [(2, "success", "2026-10-05T12:30:00Z")]),  # #3's: the first success ships #1 to #3
    )))
    inputs.write("deployments.jsonl", "")
    run_load(con, inputs.path)
    assert table(con, "deployments", "deployment_id, status, change_ids") == [
        ("shop/checkout/deployments/102", "failure", ["shop/checkout#1", "shop/checkout#2"]),
        ("shop/checkout/deployments/103", "success", ["shop/checkout#1", "shop/checkout#2", "shop/checkout#3"]),
    ]
