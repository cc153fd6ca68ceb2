"""Tests of the sample-world generator: determinism, the contract's formats, labels, signatures."""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from data import prompts
from data.generate import LEGIT_PERSONAS, PRICES_CSV, TACTICS, WorldSummary, generate_world

USERS, WEEKS, SEED = 60, 4, 7
START = datetime.date(2026, 9, 7)
TOKENS = pl.col("input_tokens") + pl.col("output_tokens") + pl.col("cache_read_tokens") + pl.col("cache_write_tokens")

UTC_TS = pl.Datetime("us", "UTC")
CONTRACT_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "token_usage": {
        "request_id": pl.String(), "ts": UTC_TS, "user_id": pl.String(), "session_id": pl.String(),
        "model": pl.String(), "input_tokens": pl.Int64(), "output_tokens": pl.Int64(),
        "cache_read_tokens": pl.Int64(), "cache_write_tokens": pl.Int64(), "cost_usd": pl.Float64(),
        "tool": pl.String(),
    },
    "invocations": {
        "invocation_id": pl.String(), "ts": UTC_TS, "user_id": pl.String(), "session_id": pl.String(),
        "repo": pl.String(), "prompt_text": pl.String(), "prompt_hash": pl.String(), "prompt_length": pl.Int64(),
        "lines_accepted": pl.Int64(), "tool_calls": pl.Int64(), "commit_sha": pl.String(),
    },
    "changes": {
        "change_id": pl.String(), "repo": pl.String(), "author_id": pl.String(), "merged_at": UTC_TS,
        "lines_added": pl.Int64(), "lines_deleted": pl.Int64(), "ai_session_ids": pl.List(pl.String()),
        "commit_shas": pl.List(pl.String()),
    },
    "deployments": {
        "deployment_id": pl.String(), "repo": pl.String(), "deployed_at": UTC_TS, "status": pl.String(),
        "change_ids": pl.List(pl.String()),
    },
}


@dataclass
class World:
    summary: WorldSummary
    tokens: pl.DataFrame
    invocations: pl.DataFrame
    changes: pl.DataFrame
    deployments: pl.DataFrame
    people: pl.DataFrame
    user_weeks: pl.DataFrame
    sessions: pl.DataFrame

    def sessions_of(self, tactic: str) -> pl.Series:
        return self.sessions.filter(pl.col("tactic") == tactic)["session_id"]


def read_world(out_dir: Path, summary: WorldSummary) -> World:
    return World(
        summary=summary,
        tokens=pl.read_parquet(out_dir / "token_usage" / "*.parquet"),
        invocations=pl.read_parquet(out_dir / "invocations" / "*.parquet"),
        changes=pl.read_parquet(out_dir / "changes.parquet"),
        deployments=pl.read_parquet(out_dir / "deployments.parquet"),
        people=pl.read_csv(out_dir / "people.csv"),
        user_weeks=pl.read_parquet(out_dir / "labels" / "user_weeks.parquet"),
        sessions=pl.read_parquet(out_dir / "labels" / "sessions.parquet"),
    )


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WorldSummary]:
    out_dir = tmp_path_factory.mktemp("world")
    return out_dir, generate_world(out_dir, users=USERS, weeks=WEEKS, seed=SEED, start=START)


@pytest.fixture(scope="module")
def world(world_dir: tuple[Path, WorldSummary]) -> World:
    return read_world(*world_dir)


def file_digests(out_dir: Path) -> dict[str, str]:
    return {str(path.relative_to(out_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(out_dir.rglob("*")) if path.is_file()}


def week_start(column: str) -> pl.Expr:
    return pl.col(column).dt.truncate("1w").dt.date().alias("week_start")


# --- determinism and formats


def test_same_seed_writes_identical_files(world_dir: tuple[Path, WorldSummary], tmp_path: Path) -> None:
    generate_world(tmp_path, users=USERS, weeks=WEEKS, seed=SEED, start=START)
    assert file_digests(tmp_path) == file_digests(world_dir[0])


def test_different_seed_writes_a_different_world(world_dir: tuple[Path, WorldSummary], tmp_path: Path) -> None:
    generate_world(tmp_path, users=USERS, weeks=WEEKS, seed=SEED + 1, start=START)
    ours, theirs = file_digests(world_dir[0]), file_digests(tmp_path)
    assert ours["changes.parquet"] != theirs["changes.parquet"]
    assert ours["labels/user_weeks.parquet"] != theirs["labels/user_weeks.parquet"]


def test_layout_and_contract_schemas(world_dir: tuple[Path, WorldSummary], world: World) -> None:
    out_dir, summary = world_dir
    days = sorted(path.stem for path in (out_dir / "token_usage").glob("*.parquet"))
    assert days[0] == "2026-09-07" and len(days) <= WEEKS * 7
    assert sorted(path.stem for path in (out_dir / "invocations").glob("*.parquet")) == days
    for name, schema in CONTRACT_SCHEMAS.items():
        frame = getattr(world, {"token_usage": "tokens"}.get(name, name))
        assert dict(frame.schema) == schema, name
        assert summary.rows[name] == frame.height > 0
    assert world.people.columns == ["user_id", "team", "org"] and world.people.height == USERS
    for frame, id_column in ((world.tokens, "request_id"), (world.invocations, "invocation_id"),
                             (world.changes, "change_id"), (world.deployments, "deployment_id")):
        assert frame[id_column].is_unique().all(), id_column
    assert world.tokens.select(pl.col("^.*_tokens$").min()).min_horizontal().item() >= 0
    assert set(world.deployments["status"]) == {"success", "failure", "rolled_back"}


def test_people_orgs_and_teams(world: World) -> None:
    team_sizes = world.people.group_by("team").len()["len"]
    assert 3 <= world.people["org"].n_unique() <= 5
    assert team_sizes.max() <= 12 and team_sizes.min() < 5
    assert world.people.group_by("team").agg(pl.col("org").n_unique())["org"].max() == 1


def test_models_tools_and_costs(world: World) -> None:
    priced = set(pl.read_csv(PRICES_CSV)["model"])
    models = world.tokens["model"].value_counts()
    unpriced = models.filter(~pl.col("model").is_in(priced))
    assert {"sonnet-4.5", "haiku-4.5", "opus-4.5", "gpt-5", "gpt-5-mini"} <= set(models["model"])
    assert 0 < unpriced["count"].sum() < 0.01 * world.tokens.height
    assert set(world.tokens["tool"]) == {"claude-code", "kiro", "copilot", "cursor"}
    cost_filled = world.tokens["cost_usd"].is_not_null().mean()
    assert 0.02 < cost_filled < 0.5


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_text_formats(tmp_path: Path, file_format: str) -> None:
    generate_world(tmp_path, users=12, weeks=1, seed=3, file_format=file_format)
    if file_format == "csv":
        tokens = pl.read_csv(tmp_path / "token_usage" / "*.csv", try_parse_dates=True)
        changes = pl.read_csv(tmp_path / "changes.csv")
        shas = changes["commit_shas"].drop_nulls()
        assert shas.str.contains(";").any() and not shas.str.contains(r"[\[\]\"]").any()
    else:
        tokens = pl.read_ndjson(list((tmp_path / "token_usage").glob("*.jsonl")))
        changes = pl.read_ndjson(tmp_path / "changes.jsonl")
        assert changes.schema["commit_shas"] == pl.List(pl.String)
    assert tokens.columns == list(CONTRACT_SCHEMAS["token_usage"])
    assert pl.Series(tokens["ts"]).cast(pl.String).str.starts_with("2026-09-").all()
    assert not (tmp_path / "token_usage.parquet").exists() and (tmp_path / "people.csv").exists()


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_world(tmp_path, users=5, weeks=1, file_format="xlsx")
    with pytest.raises(ValueError):
        generate_world(tmp_path, users=5, weeks=1, start=datetime.date(2026, 9, 8))


# --- labels


def test_labels_cover_every_user_week_and_session(world: World) -> None:
    used = pl.concat([world.tokens.select("user_id", week_start("ts")),
                      world.invocations.select("user_id", week_start("ts"))]).unique()
    labelled = world.user_weeks.select("user_id", "week_start")
    assert labelled.is_unique().all()
    assert used.join(labelled, on=["user_id", "week_start"], how="anti").is_empty()
    assert labelled.join(used, on=["user_id", "week_start"], how="anti").is_empty()
    assert world.user_weeks.height == world.summary.user_weeks
    assert world.user_weeks["is_gaming"].sum() == world.summary.gaming_user_weeks
    session_ids = set(world.tokens["session_id"]) | set(world.invocations["session_id"])
    assert set(world.sessions["session_id"]) == session_ids
    assert (world.user_weeks["is_gaming"] == world.user_weeks["tactic"].is_not_null()).all()
    assert (world.sessions["is_gaming"] == world.sessions["tactic"].is_not_null()).all()


def test_every_persona_and_tactic_appears(world: World) -> None:
    assert set(world.user_weeks["persona"]) == {*LEGIT_PERSONAS, "gamer"}
    assert set(world.user_weeks["tactic"].drop_nulls()) == set(TACTICS)
    assert set(world.sessions["tactic"].drop_nulls()) == set(TACTICS)
    gamers = world.user_weeks.filter(pl.col("persona") == "gamer")["user_id"].n_unique()
    assert 0.05 <= gamers / USERS <= 0.15
    assert not world.user_weeks.filter(pl.col("persona") != "gamer")["is_gaming"].any()


def test_gamers_game_in_a_minority_of_their_weeks(world: World) -> None:
    per_gamer = world.user_weeks.filter(pl.col("persona") == "gamer").group_by("user_id").agg(
        weeks=pl.len(), gaming=pl.col("is_gaming").sum())
    assert (per_gamer["gaming"] >= 1).all()
    assert (per_gamer["gaming"] < per_gamer["weeks"]).all()
    assert per_gamer["gaming"].sum() / per_gamer["weeks"].sum() <= 0.7


# --- measurable signatures of the tactics


def session_gaps(world: World) -> pl.DataFrame:
    """Per session: prompt count and the mean, std and CV of the gaps between prompts (seconds)."""
    return world.invocations.sort("session_id", "ts").with_columns(
        gap=pl.col("ts").diff().over("session_id").dt.total_milliseconds() / 1000,
    ).group_by("session_id").agg(
        prompts=pl.len(), gap_mean=pl.col("gap").mean(), gap_std=pl.col("gap").std(),
    ).with_columns(gap_cv=pl.col("gap_std") / pl.col("gap_mean"))


def test_prompt_loop_is_machine_regular_and_people_are_not(world: World) -> None:
    gaps = session_gaps(world)
    loops = gaps.filter(pl.col("session_id").is_in(world.sessions_of("prompt_loop").implode()))
    assert (loops["prompts"] >= 60).all()
    assert (loops["gap_std"] < 1.0).all() and (loops["gap_cv"] < 0.05).all()
    legit = gaps.join(world.sessions.filter(~pl.col("is_gaming")), on="session_id").filter(pl.col("prompts") >= 10)
    assert legit["gap_cv"].median() > 0.6
    assert legit["gap_cv"].min() > 0.1  # a few short sessions can look regular by chance, long ones never


def test_people_prompt_at_human_pace(world: World) -> None:
    legit = world.sessions.filter(~pl.col("is_gaming"))["session_id"]
    gaps = world.invocations.filter(pl.col("session_id").is_in(legit.implode())).sort("session_id", "ts").select(
        (pl.col("ts").diff().over("session_id").dt.total_milliseconds() / 1000).alias("gap")).drop_nulls()["gap"]
    assert gaps.min() >= 19.9 and gaps.max() <= 900.1
    assert 40 < gaps.median() < 200


def test_idle_agent_reads_cache_and_produces_nothing(world: World) -> None:
    idle = world.sessions_of("idle_agent").implode()
    shares = world.tokens.group_by("session_id").agg(
        share=pl.col("cache_read_tokens").sum() / TOKENS.sum(), output=pl.col("output_tokens").mean())
    assert (shares.filter(pl.col("session_id").is_in(idle))["share"] > 0.9).all()
    assert (shares.filter(pl.col("session_id").is_in(idle))["output"] < 200).all()
    legit = shares.join(world.sessions.filter(~pl.col("is_gaming")), on="session_id")
    assert legit["share"].median() < 0.8
    prompts_of_idle = world.invocations.filter(pl.col("session_id").is_in(idle))
    assert prompts_of_idle["lines_accepted"].sum() == 0 and prompts_of_idle["commit_sha"].is_null().all()


def test_token_burn_is_long_pointless_and_repo_less(world: World) -> None:
    burn = world.invocations.filter(pl.col("session_id").is_in(world.sessions_of("token_burn").implode()))
    assert burn["repo"].is_null().all() and burn["lines_accepted"].sum() == 0
    assert burn["commit_sha"].is_null().all() and burn["tool_calls"].sum() == 0
    assert burn["prompt_length"].mean() > 2_000
    burn_tokens = world.tokens.filter(pl.col("session_id").is_in(world.sessions_of("token_burn").implode()))
    assert burn_tokens["input_tokens"].median() > 5 * world.tokens["input_tokens"].median()


def test_snapshot_burst_lands_before_friday_snapshot(world: World) -> None:
    burst = world.tokens.filter(pl.col("session_id").is_in(world.sessions_of("snapshot_burst").implode()))
    assert burst.height > 0
    friday_window = (pl.col("ts").dt.weekday() == 5) & (pl.col("ts").dt.hour() >= 12) & (pl.col("ts").dt.hour() < 18)
    assert burst.select(friday_window.all()).item()


def test_regenerate_padding_pads_real_work(world: World) -> None:
    padded = world.invocations.filter(pl.col("session_id").is_in(world.sessions_of("regenerate_padding").implode()))
    phrases = pl.Series(prompts.FAMILY_TEMPLATES[prompts.REGEN]).implode()
    texts = padded.filter(pl.col("prompt_text").is_not_null())
    assert texts["prompt_text"].is_in(phrases).mean() > 0.5
    assert padded["lines_accepted"].sum() > 0  # there is real work underneath


def test_deploy_splitting_ships_tiny_changes_one_per_deployment(world: World) -> None:
    split_weeks = world.user_weeks.filter(pl.col("tactic") == "deploy_splitting").select("user_id", "week_start")
    changes = world.changes.filter(pl.col("merged_at").is_not_null()).with_columns(
        week_start("merged_at"), lines=pl.col("lines_added") + pl.col("lines_deleted"))
    in_split_weeks = changes.join(split_weeks.rename({"user_id": "author_id"}), on=["author_id", "week_start"])
    tiny = in_split_weeks.filter(pl.col("lines") <= 5)
    assert tiny.height >= 5 * split_weeks.height
    deployed = world.deployments.explode("change_ids").join(
        world.deployments.select("deployment_id", size=pl.col("change_ids").list.len()), on="deployment_id")
    tiny_deployments = deployed.filter(pl.col("change_ids").is_in(tiny["change_id"].implode()))
    assert (tiny_deployments["size"] == 1).all()
    # elsewhere, deployments batch several changes
    assert world.deployments["change_ids"].list.len().max() >= 3
    # the assistant's commits of splitting sessions all end in tiny changes
    split_commits = world.invocations.filter(
        pl.col("session_id").is_in(world.sessions_of("deploy_splitting").implode()))["commit_sha"].drop_nulls()
    listing = world.changes.explode("commit_shas").filter(pl.col("commit_shas").is_in(split_commits.implode()))
    assert listing.height > 0 and (listing["lines_added"] + listing["lines_deleted"] <= 5).all()


# --- legit behaviour and honest hard cases


def test_ordinary_weeks_have_realistic_volume(world: World) -> None:
    rows = world.tokens.select("user_id", week_start("ts")).group_by("user_id", "week_start").len()
    ordinary = rows.join(world.user_weeks.filter(pl.col("persona") == "ordinary"), on=["user_id", "week_start"])
    assert 120 <= ordinary["len"].median() <= 400
    requests_per_prompt = world.tokens.height / world.invocations.height
    assert 2.0 <= requests_per_prompt <= 4.0


def test_heavy_shippers_top_the_leaderboard_and_ship(world: World) -> None:
    weekly = world.tokens.select("user_id", week_start("ts"), tokens=TOKENS).group_by("user_id", "week_start").agg(
        pl.col("tokens").sum()).join(world.user_weeks, on=["user_id", "week_start"])
    merged = world.changes.filter(pl.col("merged_at").is_not_null()).group_by("author_id").len()
    by_persona = weekly.group_by("persona").agg(pl.col("tokens").median())
    heavy_tokens = by_persona.filter(pl.col("persona") == "heavy_shipper")["tokens"].item()
    assert heavy_tokens > 2 * by_persona.filter(pl.col("persona") == "ordinary")["tokens"].item()
    heavy = world.user_weeks.filter(pl.col("persona") == "heavy_shipper")["user_id"].unique()
    heavy_merged = merged.filter(pl.col("author_id").is_in(heavy.implode()))["len"]
    assert heavy_merged.median() >= 5 * WEEKS and heavy_merged.min() >= 2 * WEEKS


def test_explorers_never_ship(world: World) -> None:
    explorers = world.user_weeks.filter(pl.col("persona") == "explorer")["user_id"].unique().implode()
    theirs = world.changes.filter(pl.col("author_id").is_in(explorers))
    assert theirs["merged_at"].is_null().all()
    assert world.invocations.filter(pl.col("user_id").is_in(explorers))["commit_sha"].is_null().all()


def test_on_call_works_nights_and_weekends(world: World) -> None:
    on_call = world.user_weeks.filter(pl.col("persona") == "on_call")["user_id"].unique().implode()
    theirs = world.tokens.filter(pl.col("user_id").is_in(on_call))
    assert (theirs["ts"].dt.weekday() >= 6).any()
    others = world.tokens.filter(pl.col("user_id").is_in(
        world.user_weeks.filter(pl.col("persona") == "ordinary")["user_id"].unique().implode()))
    assert (theirs["ts"].dt.weekday() >= 6).mean() > 3 * (others["ts"].dt.weekday() >= 6).mean()


def test_changes_link_to_sessions_explicitly_and_by_inference(world: World) -> None:
    session_info = world.invocations.group_by("session_id").agg(
        user_id=pl.col("user_id").first(), repos=pl.col("repo").drop_nulls().unique(),
        first=pl.col("ts").min(), last=pl.col("ts").max())
    named = world.changes.explode("ai_session_ids").drop_nulls("ai_session_ids").join(
        session_info, left_on="ai_session_ids", right_on="session_id")
    assert named.height > 0
    assert (named["author_id"] == named["user_id"]).all()
    assert named.select(pl.col("repos").list.contains(pl.col("repo")).all()).item()
    merged = named.drop_nulls("merged_at")
    assert (merged["merged_at"] > merged["first"]).all()  # split changes merge while the session goes on
    assert (merged["merged_at"] - merged["last"]).max() <= datetime.timedelta(days=3, hours=1)

    commits = world.invocations.drop_nulls("commit_sha").select("commit_sha", "user_id", "repo", "ts")
    by_commit = world.changes.explode("commit_shas").join(commits, left_on="commit_shas", right_on="commit_sha")
    assert by_commit.height > 0
    assert (by_commit["author_id"] == by_commit["user_id"]).all()
    assert (by_commit["repo"] == by_commit["repo_right"]).all()

    ai_commits = commits["commit_sha"].implode()
    unnamed = world.changes.filter(
        (pl.col("ai_session_ids").list.len() == 0)
        & ~pl.col("commit_shas").list.eval(pl.element().is_in(ai_commits)).list.any()
        & pl.col("merged_at").is_not_null())
    inferable = unnamed.join(world.invocations.drop_nulls("repo"), left_on=["author_id", "repo"],
                             right_on=["user_id", "repo"]).filter(
        (pl.col("merged_at") > pl.col("ts")) & (pl.col("merged_at") - pl.col("ts") < datetime.timedelta(days=3)))
    assert inferable["change_id"].n_unique() >= 0.2 * named["change_id"].n_unique()


def test_deployments_fail_retry_roll_back_and_skip(world: World) -> None:
    assert (world.deployments["status"] == "success").mean() > 0.8
    failures = world.deployments.filter(pl.col("status") == "failure")
    retried = failures.join(world.deployments.filter(pl.col("status") == "success"), on=["repo", "change_ids"])
    assert retried.filter(pl.col("deployed_at_right") > pl.col("deployed_at")).height > 0
    shipped = world.deployments.filter(pl.col("status") == "success").explode("change_ids")["change_ids"]
    merged = world.changes.filter(pl.col("merged_at").is_not_null())
    assert 0 < merged.filter(~pl.col("change_id").is_in(shipped.implode())).height < 0.1 * merged.height
    assert 0 < world.changes["merged_at"].is_null().sum() < 0.15 * world.changes.height
    lines = (world.changes["lines_added"] + world.changes["lines_deleted"])
    assert 20 <= lines.median() <= 400


def test_prompts_are_diverse_and_hashes_are_rare(world: World) -> None:
    legit = world.sessions.filter(~pl.col("is_gaming"))["session_id"].implode()
    texts = world.invocations.filter(pl.col("session_id").is_in(legit))["prompt_text"].drop_nulls()
    assert texts.n_unique() / texts.len() > 0.95
    with_text = world.invocations.filter(pl.col("prompt_text").is_not_null())
    assert (with_text["prompt_length"] == with_text["prompt_text"].str.len_chars()).all()
    hashed = world.invocations.filter(pl.col("prompt_text").is_null())
    assert 0 < hashed.height < 0.1 * world.invocations.height
    assert hashed["prompt_hash"].is_not_null().all() and hashed["prompt_length"].is_not_null().all()
    assert world.invocations["repo"].is_not_null().mean() > 0.6
