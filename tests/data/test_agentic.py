"""Tests of the agentic sample world (data/agentic.py, `generate_world(style="agentic")`): determinism,
the chat default left unchanged, the data contract, calibration to published traces, every tactic
and hard case with its label, the true links, and the intensity knob."""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from data import agentic, prompts
from data.agentic import HARD_CASES, LEGIT_PERSONAS, TACTICS
from data.generate import WorldSummary, generate_world
from data.seeds import EVALUATION_SEEDS, TUNING_SEEDS, check_tuning_seed, seed_role
from tests.data.test_generate import CONTRACT_SCHEMAS as CHAT_CONTRACT_SCHEMAS, UTC_TS

USERS, WEEKS, SEED = 120, 4, 7
PROMPT = pl.col("input_tokens") + pl.col("cache_read_tokens") + pl.col("cache_write_tokens")
TOKENS = PROMPT + pl.col("output_tokens")

# the chat world's contract schemas, plus the optional reviews dataset agentic worlds write
CONTRACT_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    **CHAT_CONTRACT_SCHEMAS,
    "reviews": {
        "review_id": pl.String(), "change_id": pl.String(), "reviewer_id": pl.String(), "submitted_at": UTC_TS,
        "state": pl.String(), "ai_session_ids": pl.List(pl.String()), "comments": pl.Int64(),
    },
}
REQUIRED = {
    "token_usage": ("request_id", "ts", "user_id", "session_id", "model", "input_tokens", "output_tokens",
                    "cache_read_tokens", "cache_write_tokens", "tool"),
    "invocations": ("invocation_id", "ts", "user_id", "session_id", "prompt_length", "lines_accepted", "tool_calls"),
    "changes": ("change_id", "repo", "author_id", "lines_added", "lines_deleted", "ai_session_ids", "commit_shas"),
    "deployments": ("deployment_id", "repo", "deployed_at", "status", "change_ids"),
    "reviews": ("review_id", "change_id", "reviewer_id", "submitted_at", "state", "ai_session_ids", "comments"),
}
ID_COLUMNS = {"token_usage": "request_id", "invocations": "invocation_id", "changes": "change_id",
              "deployments": "deployment_id", "reviews": "review_id"}
LABEL_SCHEMAS = {
    "user_weeks": {"user_id": pl.String(), "team": pl.String(), "org": pl.String(), "week_start": pl.Date(),
                   "persona": pl.String(), "is_gaming": pl.Boolean(), "tactic": pl.String(),
                   "legit_kind": pl.String(), "hard_cases": pl.List(pl.String())},
    "sessions": {"session_id": pl.String(), "user_id": pl.String(), "week_start": pl.Date(),
                 "is_gaming": pl.Boolean(), "tactic": pl.String(), "kind": pl.String(), "legit_kind": pl.String()},
    "links": {"session_id": pl.String(), "change_id": pl.String(), "relation": pl.String(),
              "named": pl.Boolean(), "via_commit": pl.Boolean()},
}
# Content digests of chat-style worlds, computed with the generator as it was before the agentic
# style existed (commit 420780e): parquet files by their rows (as NDJSON), text files by their bytes.
CHAT_BASELINES = {
    (60, 4, 7, "parquet"): "82fad2100ee10ce8c1329f7a75a8d0e42a8d4f4ec3922df0d8772b9eedd4fbba",
    (12, 1, 3, "csv"): "0fe9967d3c95dfd9145d85fe1e45780fe8752be444d27c7fac5b3df0aa4f73ff",
    (12, 2, 5, "jsonl"): "9bd1be1ef525781561935136485eb1695c2bce9e8ea4fe4fccb1382eead0107a",
}


@dataclass
class World:
    out_dir: Path
    summary: WorldSummary
    frames: dict[str, pl.DataFrame]
    user_weeks: pl.DataFrame
    sessions: pl.DataFrame
    links: pl.DataFrame
    meta: dict

    @property
    def tokens(self) -> pl.DataFrame:
        return self.frames["token_usage"]

    @property
    def invocations(self) -> pl.DataFrame:
        return self.frames["invocations"]

    @property
    def changes(self) -> pl.DataFrame:
        return self.frames["changes"]

    def sessions_of(self, tactic: str) -> pl.Series:
        return self.sessions.filter(pl.col("tactic") == tactic)["session_id"]

    def with_labels(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(self.sessions.select("session_id", "is_gaming", "tactic", "kind", "legit_kind",
                                               pl.col("week_start").alias("session_week")), on="session_id")


def read_world(out_dir: Path, summary: WorldSummary) -> World:
    frames = {name: pl.read_parquet(out_dir / name / "*.parquet") for name in ("token_usage", "invocations")}
    frames |= {name: pl.read_parquet(out_dir / f"{name}.parquet") for name in ("changes", "deployments", "reviews")}
    frames["people"] = pl.read_csv(out_dir / "people.csv")
    labels = out_dir / "labels"
    return World(out_dir=out_dir, summary=summary, frames=frames,
                 user_weeks=pl.read_parquet(labels / "user_weeks.parquet"),
                 sessions=pl.read_parquet(labels / "sessions.parquet"),
                 links=pl.read_parquet(labels / "links.parquet"),
                 meta=json.loads((labels / "world.json").read_text()))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    out_dir = tmp_path_factory.mktemp("agentic")
    return read_world(out_dir, generate_world(out_dir, users=USERS, weeks=WEEKS, seed=SEED, style="agentic"))


def file_digests(out_dir: Path) -> dict[str, str]:
    return {str(path.relative_to(out_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(out_dir.rglob("*")) if path.is_file()}


def content_digest(out_dir: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(out_dir.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(out_dir)).encode())
            digest.update(pl.read_parquet(path).write_ndjson().encode() if path.suffix == ".parquet"
                          else path.read_bytes())
    return digest.hexdigest()


def week_start(column: str) -> pl.Expr:
    return pl.col(column).dt.truncate("1w").dt.date().alias("week_start")


# --- the chat default, determinism, arguments, seeds


@pytest.mark.parametrize(("users", "weeks", "seed", "file_format"), list(CHAT_BASELINES))
def test_default_style_is_unchanged(tmp_path: Path, users: int, weeks: int, seed: int, file_format: str) -> None:
    summary = generate_world(tmp_path, users=users, weeks=weeks, seed=seed, file_format=file_format)
    assert summary.style == "chat" and summary.intensity == 1.0
    assert content_digest(tmp_path) == CHAT_BASELINES[(users, weeks, seed, file_format)]
    assert not (tmp_path / "reviews.parquet").exists() and not (tmp_path / "labels" / "links.parquet").exists()


def test_same_seed_writes_identical_files(world: World, tmp_path: Path) -> None:
    generate_world(tmp_path, users=USERS, weeks=WEEKS, seed=SEED, style="agentic")
    assert file_digests(tmp_path) == file_digests(world.out_dir)


def test_a_world_without_optional_columns_is_the_same_world_as_a_source_reporting_less(
        world: World, tmp_path: Path) -> None:
    without = ("lines_accepted", "commit_sha", "prompt_text", "tool")
    generate_world(tmp_path, users=USERS, weeks=WEEKS, seed=SEED, style="agentic", without=without)
    less = read_world(tmp_path, world.summary)
    assert set(less.invocations.columns) == set(world.invocations.columns) - {"lines_accepted", "commit_sha", "prompt_text"}
    assert set(less.tokens.columns) == set(world.tokens.columns) - {"tool"}
    # the prompts as a source that hashes them upstream: sha256 of the text, nothing else changed
    full = world.invocations.drop("prompt_hash")
    hashed = full.get_column("prompt_text").map_elements(lambda t: hashlib.sha256(t.encode()).hexdigest(),
                                                         return_dtype=pl.String)
    expected = full.with_columns(prompt_hash=hashed).select(less.invocations.columns)
    assert less.invocations.equals(expected)
    assert less.tokens.equals(world.tokens.drop("tool"))
    for name in ("user_weeks", "sessions", "links"):  # the ground truth is the same world's
        assert getattr(less, name).equals(getattr(world, name)), name
    assert less.meta["without"] == sorted(without) and world.meta["without"] == []
    with pytest.raises(ValueError, match="cannot leave out user_id"):
        generate_world(tmp_path, users=USERS, weeks=WEEKS, seed=SEED, style="agentic", without=("user_id",))


def test_different_seed_writes_a_different_world(world: World, tmp_path: Path) -> None:
    generate_world(tmp_path, users=USERS, weeks=WEEKS, seed=SEED + 1, style="agentic")
    ours, theirs = file_digests(world.out_dir), file_digests(tmp_path)
    assert ours["changes.parquet"] != theirs["changes.parquet"]
    assert ours["labels/links.parquet"] != theirs["labels/links.parquet"]


def test_a_chat_world_written_over_an_agentic_one_leaves_nothing_behind(tmp_path: Path) -> None:
    generate_world(tmp_path, users=20, weeks=1, seed=1, style="agentic")
    assert (tmp_path / "reviews.parquet").exists()
    generate_world(tmp_path, users=20, weeks=1, seed=1)
    assert not (tmp_path / "reviews.parquet").exists() and not (tmp_path / "labels" / "world.json").exists()


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="style"):
        generate_world(tmp_path, users=5, weeks=1, style="agents")
    with pytest.raises(ValueError, match="agentic style only"):
        generate_world(tmp_path, users=5, weeks=1, intensity=0.5)
    for intensity in (0.0, -1.0, 5.0):
        with pytest.raises(ValueError, match="intensity"):
            generate_world(tmp_path, users=5, weeks=1, style="agentic", intensity=intensity)


def test_seed_split_is_documented_and_disjoint(world: World) -> None:
    assert set(TUNING_SEEDS) == set(range(1, 51)) and set(EVALUATION_SEEDS) == {101, 202, 303}
    assert not set(TUNING_SEEDS) & set(EVALUATION_SEEDS)
    assert seed_role(101) == "evaluation" and seed_role(7) == "tuning" and seed_role(0) == "other"
    with pytest.raises(ValueError):
        check_tuning_seed(202)
    assert world.meta["seed_role"] == "tuning" and world.meta["style"] == "agentic"
    docs = (Path(__file__).parents[2] / "docs" / "worlds.md").read_text()
    assert "TUNING_SEEDS" in docs and "EVALUATION_SEEDS" in docs


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_text_formats(tmp_path: Path, file_format: str) -> None:
    generate_world(tmp_path, users=25, weeks=1, seed=3, file_format=file_format, style="agentic")
    if file_format == "csv":
        reviews = pl.read_csv(tmp_path / "reviews.csv")
        named = reviews["ai_session_ids"].drop_nulls()
        assert named.len() > 0 and not named.str.contains(r"[\[\]\"]").any()
    else:
        reviews = pl.read_ndjson(tmp_path / "reviews.jsonl")
        assert reviews.schema["ai_session_ids"] == pl.List(pl.String)
    assert reviews.columns == list(CONTRACT_SCHEMAS["reviews"])
    suffixes = {path.suffix for path in (tmp_path / "token_usage").iterdir()}
    assert suffixes == {f".{file_format}"} and len(list((tmp_path / "token_usage").iterdir())) >= 5


# --- the contract


def test_every_file_follows_the_contract(world: World) -> None:
    days = sorted(path.stem for path in (world.out_dir / "token_usage").glob("*.parquet"))
    assert days[0] == "2026-09-07" and len(days) <= WEEKS * 7
    assert sorted(path.stem for path in (world.out_dir / "invocations").glob("*.parquet")) == days
    for name, schema in CONTRACT_SCHEMAS.items():
        frame = world.frames[name]
        assert dict(frame.schema) == schema, name
        assert world.summary.rows[name] == frame.height > 0, name
        assert frame[ID_COLUMNS[name]].is_unique().all(), name
        nulls = frame.select(pl.col(REQUIRED[name]).null_count())
        assert nulls.sum_horizontal().item() == 0, (name, nulls)
        for column in frame.select(pl.col(pl.Int64)).columns:
            assert frame[column].min() >= 0, (name, column)
    assert world.frames["people"].columns == ["user_id", "team", "org"] and world.frames["people"].height == USERS
    people = world.frames["people"]["user_id"].implode()
    for name, column in (("token_usage", "user_id"), ("invocations", "user_id"), ("changes", "author_id"),
                         ("reviews", "reviewer_id")):
        assert world.frames[name][column].is_in(people).all(), name
    assert set(world.frames["reviews"]["state"]) == {"approved", "changes_requested", "commented"}
    assert set(world.frames["deployments"]["status"]) <= {"success", "failure", "rolled_back"}
    change_ids = world.changes["change_id"].implode()
    assert world.frames["reviews"]["change_id"].is_in(change_ids).all()
    assert world.frames["deployments"]["change_ids"].explode().is_in(change_ids).all()
    session_ids = pl.concat([world.tokens["session_id"], world.invocations["session_id"]]).unique().implode()
    assert world.changes["ai_session_ids"].explode().drop_nulls().is_in(session_ids).all()
    assert world.frames["reviews"]["ai_session_ids"].explode().drop_nulls().is_in(session_ids).all()
    assert set(world.tokens["tool"]) == set(agentic.TOOLS)
    # the cost is reported by some clients only; the rest is priced from the price table
    assert 0.02 < world.tokens["cost_usd"].is_not_null().mean() < 0.5
    with_text = world.invocations.filter(pl.col("prompt_text").is_not_null())
    assert (with_text["prompt_length"] == with_text["prompt_text"].str.len_chars()).all()
    hashed = world.invocations.filter(pl.col("prompt_text").is_null())
    assert 0 < hashed.height < 0.1 * world.invocations.height and hashed["prompt_hash"].is_not_null().all()


def test_labels_schemas_and_coverage(world: World) -> None:
    for name, schema in LABEL_SCHEMAS.items():
        assert dict(getattr(world, name).schema) == schema, name
    used = pl.concat([world.tokens.select("user_id", week_start("ts")),
                      world.invocations.select("user_id", week_start("ts"))]).unique()
    labelled = world.user_weeks.select("user_id", "week_start")
    assert labelled.is_unique().all()
    assert used.join(labelled, on=["user_id", "week_start"], how="anti").is_empty()
    assert labelled.join(used, on=["user_id", "week_start"], how="anti").is_empty()
    assert world.user_weeks.height == world.summary.user_weeks
    assert world.user_weeks["is_gaming"].sum() == world.summary.gaming_user_weeks
    assert set(world.sessions["session_id"]) == set(world.tokens["session_id"]) | set(world.invocations["session_id"])
    uw = world.user_weeks
    assert (uw["is_gaming"] == uw["tactic"].is_not_null()).all()
    assert (uw["is_gaming"] == uw["legit_kind"].is_null()).all()
    assert set(uw["hard_cases"].explode().drop_nulls()) == set(HARD_CASES)
    assert uw.filter(pl.col("is_gaming"))["hard_cases"].list.len().max() == 0
    # the legit kind is the first hard case, else the persona ("gamer_off_week" for a gamer's other weeks)
    legit = uw.filter(~pl.col("is_gaming"))
    expected = pl.coalesce(pl.col("hard_cases").list.first(), pl.col("persona").replace("gamer", "gamer_off_week"))
    assert (legit["legit_kind"] == legit.select(expected).to_series()).all()
    assert (world.sessions["is_gaming"] == world.sessions["tactic"].is_not_null()).all()
    assert world.sessions.filter(pl.col("is_gaming"))["legit_kind"].is_null().all()
    assert set(world.sessions["kind"]) == set(agentic.KINDS)


# --- calibration to the published traces


def agent_sessions(world: World) -> pl.Series:
    """Legitimate agent sessions (everything but chat-style ones)."""
    return world.sessions.filter(~pl.col("is_gaming") & (pl.col("kind") != "chat"))["session_id"]


def test_calibration_to_published_traces(world: World) -> None:
    agents = agent_sessions(world).implode()
    calls = world.tokens.filter(pl.col("session_id").is_in(agents))
    turns = world.invocations.filter(pl.col("session_id").is_in(agents))
    sessions = turns["session_id"].n_unique()
    prompt = calls.select(PROMPT.sum()).item()
    # GitHub Copilot coding-agent traces: 3.95 user turns a session, 7.83 LLM calls a turn
    assert 3.95 * 0.9 <= turns.height / sessions <= 3.95 * 1.1
    assert 7.83 * 0.9 <= calls.height / turns.height <= 7.83 * 1.1
    # cached share of the prompt tokens: 86% (Copilot) to 96% (TraceLab)
    assert 0.80 <= calls["cache_read_tokens"].sum() / prompt <= 0.97
    # output under ~1% of the prompt (Copilot 0.78%, TraceLab 0.34%), ~530 tokens a call
    assert calls["output_tokens"].sum() / prompt < 0.015
    assert 300 <= calls["output_tokens"].mean() <= 900
    # ~68k prompt tokens a call (Copilot; TraceLab 154k), ~2.1M a session
    assert 40_000 <= prompt / calls.height <= 160_000
    assert 1.0e6 <= prompt / sessions <= 4.0e6
    # TraceLab: 1.21 tool calls an agent step
    assert 1.0 <= turns["tool_calls"].sum() / calls.height <= 1.5
    # heavy tails: some sessions run many more turns than the typical one
    per_session = turns.group_by("session_id").len()["len"]
    assert per_session.quantile(0.99) >= 4 * per_session.median()
    # chat-style use is a minority, about 15% of the sessions
    assert 0.10 <= (world.sessions["kind"] == "chat").mean() <= 0.20


def test_context_grows_and_is_read_from_cache(world: World) -> None:
    work = world.sessions.filter((pl.col("kind") == "work") & ~pl.col("is_gaming"))["session_id"].implode()
    calls = world.tokens.filter(pl.col("session_id").is_in(work)).sort("session_id", "ts").with_columns(
        prompt=PROMPT, step=pl.int_range(pl.len()).over("session_id"))
    long = calls.group_by("session_id").agg(first=pl.col("prompt").first(), calls=pl.len(),
                                            peak=pl.col("prompt").max()).filter(pl.col("calls") >= 10)
    assert (long["peak"] > long["first"]).mean() > 0.95
    assert calls["prompt"].max() <= agentic.CONTEXT_LIMIT
    later = calls.filter(pl.col("step") > 0)
    assert (later["cache_read_tokens"] > 0).mean() > 0.8
    claude = world.tokens.filter(pl.col("model").is_in(["sonnet-4.5", "opus-4.5", "haiku-4.5"]))
    assert claude["cache_write_tokens"].sum() > 0
    openai = world.tokens.filter(pl.col("model").str.starts_with("gpt"))
    assert openai.height > 0 and openai["cache_write_tokens"].sum() == 0


def test_links_come_from_trailers_commits_and_inference(world: World) -> None:
    authored = world.links.filter(pl.col("relation") == "authored")
    fed = authored["change_id"].unique()
    trailer_share = world.changes.filter(pl.col("change_id").is_in(fed.implode()))["ai_session_ids"].list.len().gt(0)
    assert 0.3 <= trailer_share.mean() <= 0.5  # trailers are not universal (TRAILER_SHARE = 0.4)
    assert authored["via_commit"].mean() > 0.3
    neither = ~authored["named"] & ~authored["via_commit"]
    assert 0.1 <= neither.mean() <= 0.45  # only inference finds these


# --- tactics


def test_every_tactic_and_persona_appears_with_its_label(world: World) -> None:
    assert set(world.user_weeks["tactic"].drop_nulls()) == set(TACTICS)
    assert set(world.sessions["tactic"].drop_nulls()) == set(TACTICS)
    assert set(world.user_weeks["persona"]) == {*LEGIT_PERSONAS, "gamer"}
    assert not world.user_weeks.filter(pl.col("persona") != "gamer")["is_gaming"].any()
    assert {*HARD_CASES, "ordinary", "heavy_shipper", "gamer_off_week"} <= set(world.user_weeks["legit_kind"])


def test_idle_agent_keeps_a_flat_cached_context_and_produces_nothing(world: World) -> None:
    idle = world.sessions_of("idle_agent").implode()
    calls = world.tokens.filter(pl.col("session_id").is_in(idle)).sort("session_id", "ts")
    assert calls["output_tokens"].mean() < 100
    growth = calls.with_columns(prompt=PROMPT).group_by("session_id").agg(
        per_call=(pl.col("prompt").last() - pl.col("prompt").first()) / pl.len(), calls=pl.len())
    assert (growth["per_call"] < 200).all() and (growth["calls"] >= 20).all()
    assert calls["cache_read_tokens"].sum() / calls.select(PROMPT.sum()).item() > 0.97
    turns = world.invocations.filter(pl.col("session_id").is_in(idle))
    assert turns["lines_accepted"].sum() == 0 and turns["commit_sha"].is_null().all()


def test_token_burn_is_uncached_pointless_and_repo_less(world: World) -> None:
    burn = world.sessions_of("token_burn").implode()
    turns = world.invocations.filter(pl.col("session_id").is_in(burn))
    assert turns["repo"].is_null().all() and turns["lines_accepted"].sum() == 0
    assert turns["commit_sha"].is_null().all() and turns["prompt_length"].mean() > 2_000
    calls = world.tokens.filter(pl.col("session_id").is_in(burn))
    assert calls["cache_read_tokens"].sum() / calls.select(PROMPT.sum()).item() < 0.5
    uncached = pl.col("input_tokens") + pl.col("cache_write_tokens")  # Claude models write what they miss
    assert calls.select(uncached.median()).item() > 10 * world.tokens.select(uncached.median()).item()


def test_prompt_loop_runs_on_a_clock(world: World) -> None:
    loops = world.invocations.filter(pl.col("session_id").is_in(world.sessions_of("prompt_loop").implode()))
    gaps = loops.sort("session_id", "ts").with_columns(
        gap=pl.col("ts").diff().over("session_id").dt.total_milliseconds() / 1000).group_by("session_id").agg(
        turns=pl.len(), mean=pl.col("gap").mean(), std=pl.col("gap").std())
    assert (gaps["turns"] >= 60).all() and (gaps["std"] / gaps["mean"] < 0.05).all()
    legit = world.invocations.filter(pl.col("session_id").is_in(agent_sessions(world).implode())).sort(
        "session_id", "ts").with_columns(gap=pl.col("ts").diff().over("session_id").dt.total_milliseconds() / 1000)
    cv = legit.group_by("session_id").agg(n=pl.len(), cv=pl.col("gap").std() / pl.col("gap").mean()).filter(
        pl.col("n") >= 10)
    assert cv["cv"].min() > 0.2


def test_snapshot_burst_spends_before_the_friday_snapshot(world: World) -> None:
    burst = world.with_labels(world.tokens).filter(pl.col("tactic") == "snapshot_burst")
    friday = (pl.col("ts").dt.weekday() == 5) & (pl.col("ts").dt.hour() >= 12) & (pl.col("ts").dt.hour() < 18)
    assert burst.height > 0 and burst.select(friday.all()).item()
    weeks = world.user_weeks.filter(pl.col("tactic") == "snapshot_burst").select("user_id", "week_start")
    theirs = world.tokens.with_columns(week_start("ts"), tokens=TOKENS).join(weeks, on=["user_id", "week_start"])
    share = theirs.group_by("user_id", "week_start").agg(
        (pl.col("tokens").filter(friday).sum() / pl.col("tokens").sum()).alias("share"))["share"]
    assert share.min() > 0.3


def test_regenerate_padding_pads_real_agent_work(world: World) -> None:
    padded = world.sessions_of("regenerate_padding")
    turns = world.invocations.filter(pl.col("session_id").is_in(padded.implode()) & pl.col("prompt_text").is_not_null())
    assert turns["prompt_text"].is_in(pl.Series(prompts.FAMILY_TEMPLATES[prompts.REGEN]).implode()).mean() > 0.4
    assert turns["lines_accepted"].sum() > 0
    assert world.links.filter(pl.col("session_id").is_in(padded.implode())).height > 0


def test_deploy_splitting_ships_tiny_changes_one_per_deployment(world: World) -> None:
    split = world.links.filter(pl.col("session_id").is_in(world.sessions_of("deploy_splitting").implode()))
    tiny = world.changes.filter(pl.col("change_id").is_in(split["change_id"].implode()))
    assert tiny.height >= 5 and (tiny["lines_added"] + tiny["lines_deleted"] <= 5).all()
    deployments = world.frames["deployments"]
    shipping = deployments.filter(pl.col("change_ids").list.eval(
        pl.element().is_in(tiny["change_id"].implode())).list.any())
    assert shipping.height > 0 and (shipping["change_ids"].list.len() == 1).all()
    assert deployments["change_ids"].list.len().max() >= 3


def test_disguised_burn_looks_human_burns_4_to_6x_and_ships_one_tiny_change_a_week(world: World) -> None:
    weeks = world.user_weeks.filter(pl.col("tactic") == "disguised_burn").select("user_id", "week_start")
    assert weeks.height > 0
    weekly = world.tokens.with_columns(week_start("ts"), tokens=TOKENS).group_by("user_id", "week_start").agg(
        pl.col("tokens").sum()).join(world.user_weeks, on=["user_id", "week_start"])
    normal = weekly.filter(pl.col("legit_kind") == "ordinary")["tokens"].median()
    burned = weekly.join(weeks, on=["user_id", "week_start"])["tokens"]
    # 4-6x a person's normal agent work; about 4x the ordinary median at 600 people, wider with the
    # one or two burners of this small world
    assert 2 * normal <= burned.median() <= 10 * normal
    burn = world.sessions_of("disguised_burn").implode()
    turns = world.invocations.filter(pl.col("session_id").is_in(burn))
    assert turns["repo"].is_not_null().mean() > 0.9 and turns["lines_accepted"].sum() < 0.3 * turns.height
    texts = turns["prompt_text"].drop_nulls()
    texts = texts.filter(~texts.is_in(pl.Series(prompts.FAMILY_TEMPLATES[prompts.APPROVAL]).implode()))
    assert texts.n_unique() / texts.len() > 0.95  # diverse prompts, beside the approvals everyone types
    gaps = turns.sort("session_id", "ts").select(
        pl.col("ts").diff().over("session_id").dt.total_milliseconds() / 1000).to_series().drop_nulls()
    assert gaps.median() > 60  # human pacing
    cover = world.links.filter(pl.col("session_id").is_in(burn))
    assert cover.height == weeks.height  # one linked change a week
    assert cover["via_commit"].all() and not cover["named"].any()
    changes = world.changes.filter(pl.col("change_id").is_in(cover["change_id"].implode()))
    assert (changes["lines_added"] + changes["lines_deleted"] <= 5).all()


def test_gradual_ramp_grows_week_by_week_without_shipping(world: World) -> None:
    ramp = world.with_labels(world.tokens).filter(pl.col("tactic") == "gradual_ramp").with_columns(
        tokens=TOKENS).group_by("user_id", "session_week").agg(pl.col("tokens").sum(),
                                                                pl.col("session_id").n_unique().alias("sessions"))
    trend = ramp.sort("session_week").group_by("user_id").agg(
        weeks=pl.len(), sessions=pl.corr(pl.col("session_week").cast(pl.Int64), "sessions", method="spearman"),
        first=pl.col("tokens").first(), last=pl.col("tokens").last())
    assert trend.height > 0 and (trend["weeks"] >= 2).all()
    assert (trend["sessions"] > 0.7).all() and (trend["last"] > trend["first"]).all()
    assert world.links.filter(pl.col("session_id").is_in(world.sessions_of("gradual_ramp").implode())).is_empty()


def test_team_collusion_is_a_whole_team_in_the_same_weeks(world: World) -> None:
    colluding = world.user_weeks.filter(pl.col("tactic") == "team_collusion")
    assert colluding["team"].n_unique() == 1 and colluding["team"][0] == world.meta["collusion_team"]
    assert sorted(str(day) for day in colluding["week_start"].unique()) == world.meta["collusion_weeks"]
    members = world.frames["people"].filter(pl.col("team") == world.meta["collusion_team"])["user_id"]
    active = world.user_weeks.filter(pl.col("user_id").is_in(members.implode())
                                     & pl.col("week_start").is_in(colluding["week_start"].unique().implode()))
    assert (active["tactic"] == "team_collusion").all() and colluding["user_id"].n_unique() >= 4


# --- legitimate hard cases


def test_reviewers_review_others_with_ai_and_ship_nothing_of_their_own(world: World) -> None:
    reviewers = world.user_weeks.filter(pl.col("persona") == "reviewer")["user_id"].unique().implode()
    assert world.changes.filter(pl.col("author_id").is_in(reviewers)).is_empty()
    review_sessions = world.sessions.filter(pl.col("kind") == "review")
    assert (review_sessions["legit_kind"] == "reviewer").all()
    turns = world.invocations.filter(pl.col("session_id").is_in(review_sessions["session_id"].implode()))
    work = world.invocations.filter(pl.col("session_id").is_in(
        world.sessions.filter(pl.col("kind") == "work")["session_id"].implode()))
    assert turns["lines_accepted"].mean() < 0.05 * work["lines_accepted"].mean()
    assert turns["commit_sha"].is_null().all()
    reviewed = world.links.filter(pl.col("relation") == "reviewed")
    assert reviewed.height > 0 and 0.3 < reviewed["named"].mean() < 0.7  # the review names the session sometimes
    reviews = world.frames["reviews"].explode("ai_session_ids").drop_nulls("ai_session_ids")
    named = reviewed.filter("named").join(reviews, left_on=["session_id", "change_id"],
                                          right_on=["ai_session_ids", "change_id"])
    assert named.height == reviewed["named"].sum()
    own = reviews.join(world.changes, on="change_id").filter(pl.col("author_id") == pl.col("reviewer_id"))
    assert own.is_empty()


def test_long_migrations_merge_7_to_14_days_after_their_sessions(world: World) -> None:
    migration = world.sessions.filter(pl.col("kind") == "migration")
    assert migration.height > 0 and (migration["legit_kind"] == "long_migration").all()
    assert world.user_weeks.filter(pl.col("hard_cases").list.contains("long_migration")).height > 0
    last = world.invocations.group_by("session_id").agg(pl.col("ts").max().alias("last"))
    merged = world.links.join(migration, on="session_id").join(last, on="session_id").join(
        world.changes, on="change_id").drop_nulls("merged_at")
    lag_days = (merged["merged_at"] - merged["last"]).dt.total_hours() / 24
    assert merged.height > 0 and lag_days.min() >= 7 and lag_days.max() <= 14


def test_research_team_merges_but_never_deploys(world: World) -> None:
    repos = world.meta["research_repos"]
    assert repos and world.meta["research_team"]
    theirs = world.changes.filter(pl.col("repo").is_in(repos))
    assert theirs["merged_at"].is_not_null().sum() > 0
    deployments = world.frames["deployments"]
    assert deployments.filter(pl.col("repo").is_in(repos)).is_empty()
    assert not deployments["change_ids"].explode().is_in(theirs["change_id"].implode()).any()
    team = world.user_weeks.filter(pl.col("team") == world.meta["research_team"])
    assert (team["persona"] == "researcher").all() and team["hard_cases"].list.contains("research_team").all()


def test_adoption_week_doubles_to_triples_volume_and_shipped_work(world: World) -> None:
    adoption = datetime.date.fromisoformat(world.meta["adoption_week_start"])
    legit = world.with_labels(world.tokens).filter(~pl.col("is_gaming")).with_columns(week_start("ts"), tokens=TOKENS)
    weekly = legit.group_by("week_start").agg(pl.col("tokens").sum())
    others = weekly.filter(pl.col("week_start") != adoption)["tokens"].median()
    assert 1.8 * others <= weekly.filter(pl.col("week_start") == adoption)["tokens"].item() <= 3.2 * others
    merged = world.changes.drop_nulls("merged_at").group_by(week_start("merged_at")).len()
    assert merged.filter(pl.col("week_start") == adoption)["len"].item() >= 1.5 * merged.filter(
        pl.col("week_start") != adoption)["len"].median()
    that_week = world.user_weeks.filter((pl.col("week_start") == adoption) & ~pl.col("is_gaming"))
    assert that_week["hard_cases"].list.contains("adoption_week").all()


# --- true links


def test_true_links_point_to_existing_changes_and_sessions(world: World) -> None:
    links = world.links
    assert links.select("session_id", "change_id").is_unique().all()
    assert links["change_id"].is_in(world.changes["change_id"].implode()).all()
    assert links["session_id"].is_in(world.sessions["session_id"].implode()).all()
    assert set(links["relation"]) == {"authored", "reviewed"}
    # authored links: the session's person wrote the change, in a repository the session worked in
    authored = links.filter(pl.col("relation") == "authored").join(world.changes, on="change_id").join(
        world.sessions.select("session_id", "user_id"), on="session_id")
    assert (authored["author_id"] == authored["user_id"]).all()


def test_what_the_data_shows_agrees_with_the_truth(world: World) -> None:
    truth = world.links.select("session_id", "change_id", "named", "via_commit")
    # every session a change names is a true link, flagged `named`
    trailers = world.changes.explode("ai_session_ids").drop_nulls("ai_session_ids").select(
        pl.col("ai_session_ids").alias("session_id"), "change_id")
    assert trailers.join(truth, on=["session_id", "change_id"], how="anti").is_empty()
    assert trailers.join(truth, on=["session_id", "change_id"])["named"].all()
    # every change listing a session's commit is a true link, flagged `via_commit`
    commits = world.invocations.drop_nulls("commit_sha").select("session_id", "commit_sha")
    listed = world.changes.explode("commit_shas").join(commits, left_on="commit_shas", right_on="commit_sha").select(
        "session_id", "change_id").unique()
    assert listed.join(truth, on=["session_id", "change_id"], how="anti").is_empty()
    flagged = truth.filter("via_commit").select("session_id", "change_id")
    assert flagged.sort("session_id", "change_id").equals(listed.sort("session_id", "change_id"))


def test_links_fall_in_the_attribution_window(world: World) -> None:
    first = world.invocations.group_by("session_id").agg(pl.col("ts").min().alias("first"))
    merged = world.links.join(world.changes, on="change_id").drop_nulls("merged_at").join(first, on="session_id")
    assert (merged["first"] >= merged["merged_at"] - datetime.timedelta(days=21)).all()
    assert (merged["first"] <= merged["merged_at"] + datetime.timedelta(days=2)).all()


# --- intensity


def test_intensity_scales_only_the_gaming(tmp_path: Path) -> None:
    gaming_tokens, legit, labels = [], [], []
    for intensity in (0.25, 0.5, 1.0):
        out_dir = tmp_path / str(intensity)
        summary = generate_world(out_dir, users=60, weeks=3, seed=5, style="agentic", intensity=intensity)
        assert summary.intensity == intensity
        sessions = pl.read_parquet(out_dir / "labels" / "sessions.parquet")
        tokens = pl.read_parquet(out_dir / "token_usage" / "*.parquet").join(sessions, on="session_id")
        gaming_tokens.append(tokens.filter("is_gaming").select(TOKENS.sum()).item())
        legit.append(tokens.filter(~pl.col("is_gaming")).select(
            "ts", "user_id", "model", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"
        ).sort(pl.all()))
        labels.append(pl.read_parquet(out_dir / "labels" / "user_weeks.parquet").select(
            "user_id", "week_start", "is_gaming", "tactic"))
        assert set(sessions["tactic"].drop_nulls()) == set(TACTICS)
    assert gaming_tokens[0] < gaming_tokens[1] < gaming_tokens[2]
    assert gaming_tokens[2] > 2 * gaming_tokens[0]
    assert legit[0].equals(legit[2]) and legit[1].equals(legit[2])  # the legitimate world does not move
    assert labels[0].equals(labels[2])  # the same user-weeks game, more or less hard


def test_people_approve_an_agents_steps_and_scripts_do_not(world: World) -> None:
    approvals = pl.Series(prompts.FAMILY_TEMPLATES[prompts.APPROVAL]).implode()
    work_sessions = world.sessions.filter(pl.col("kind") == "work")["session_id"]
    work = world.invocations.filter(pl.col("session_id").is_in(work_sessions.implode()))
    share = work["prompt_text"].drop_nulls().is_in(approvals).mean()
    assert 0.08 <= share <= 0.16  # 12% of user messages in published agent threads (APPROVAL_SHARE)
    first_turns = work.sort("ts").group_by("session_id").first()
    assert not first_turns["prompt_text"].drop_nulls().is_in(approvals).any()  # an approval answers a step
    loops = world.invocations.filter(pl.col("session_id").is_in(world.sessions_of("prompt_loop").implode()))
    assert loops.height > 0 and not loops["prompt_text"].drop_nulls().is_in(approvals).any()
