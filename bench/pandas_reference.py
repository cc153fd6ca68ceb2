"""The reference a team would write first: pandas + scikit-learn, everything in memory.

A subset of the pipeline's features, written the obvious way (defaults everywhere, no tuning):
  - volume per user-week: tokens, cost (reported, else priced from pipeline/ingest/prices.csv), requests,
    sessions;
  - exact prompt repetition: sha256 of each prompt text (or the given prompt_hash), repeats of an
    earlier prompt of the same session and of the same user-week, by `duplicated`;
  - sessions (first and last event, tokens) and inferred links: same author and repository,
    merged between the session's start and 5 days after its end, by `merge`; a session is
    shipped when a linked change reached a successful deployment;
  - per user-week: merged changes, unshipped token share, tokens per merged change;
  - an IsolationForest (100 trees) over the user-weeks and another over the sessions.
No validation, no deduplication, no near-duplicates, no explicit links, no peer baselines, no
rules or ensemble, no tables written: a full pandas port would only take longer.
"""
from __future__ import annotations

import hashlib
from contextlib import nullcontext
from importlib import resources
from pathlib import Path
from typing import Any

from bench.world import dataset_files

LINK_WINDOW_DAYS = 5
TOKEN_KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def _week_start(ts: Any) -> Any:
    """Monday 00:00 UTC of each timestamp."""
    import pandas as pd

    day = ts.dt.floor("D")
    return day - pd.to_timedelta(day.dt.weekday, unit="D")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run(input_dir: Path, meter: Any = None) -> dict[str, int]:
    """Compute the features and anomaly scores; rows of each result. `meter` times the phases."""
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import IsolationForest

    def phase(name: str) -> Any:
        return meter.phase(name) if meter is not None else nullcontext()

    with phase("read parquet and csv"):
        tokens = pd.concat([pd.read_parquet(p) for p in dataset_files(input_dir, "token_usage", "parquet")],
                           ignore_index=True)
        prompts = pd.concat([pd.read_parquet(p) for p in dataset_files(input_dir, "invocations", "parquet")],
                            ignore_index=True)
        changes = pd.concat([pd.read_parquet(p) for p in dataset_files(input_dir, "changes", "parquet")],
                            ignore_index=True)
        deployments = pd.concat([pd.read_parquet(p) for p in dataset_files(input_dir, "deployments", "parquet")],
                                ignore_index=True)
        people = pd.concat([pd.read_csv(p) for p in dataset_files(input_dir, "people", "csv")], ignore_index=True)
        prices = pd.read_csv(resources.files("pipeline.ingest").joinpath("prices.csv"))

    with phase("volume per user-week"):
        tokens[list(TOKEN_KINDS)] = tokens[list(TOKEN_KINDS)].fillna(0)
        tokens["tokens"] = tokens[list(TOKEN_KINDS)].sum(axis=1)
        priced = tokens.merge(prices, on="model", how="left")
        computed = (priced["input_tokens"] * priced["input_per_mtok"] + priced["output_tokens"] * priced["output_per_mtok"]
                    + priced["cache_read_tokens"] * priced["cache_read_per_mtok"].fillna(0)
                    + priced["cache_write_tokens"] * priced["cache_write_per_mtok"].fillna(0)) / 1e6
        tokens["cost"] = tokens["cost_usd"].fillna(computed).fillna(0)
        tokens["week_start"] = _week_start(tokens["ts"])
        volume = tokens.groupby(["user_id", "week_start"]).agg(
            tokens=("tokens", "sum"), cost_usd=("cost", "sum"), requests=("request_id", "size"),
            sessions=("session_id", "nunique"),
        )

    with phase("exact prompt repetition"):
        prompts = prompts.sort_values(["ts", "invocation_id"])
        prompts["fingerprint"] = prompts["prompt_text"].map(_sha256, na_action="ignore").fillna(prompts["prompt_hash"])
        prompts["week_start"] = _week_start(prompts["ts"])
        fingerprinted = prompts["fingerprint"].notna()
        prompts["repeat_in_session"] = fingerprinted & prompts.duplicated(["session_id", "fingerprint"])
        prompts["repeat_in_week"] = fingerprinted & prompts.duplicated(["user_id", "week_start", "fingerprint"])
        prompts["no_repo"] = prompts["repo"].isna()
        repetition = prompts.groupby(["user_id", "week_start"]).agg(
            prompts=("invocation_id", "size"), exact_repeat_share=("repeat_in_session", "mean"),
            exact_repeat_share_week=("repeat_in_week", "mean"), no_repo_prompt_share=("no_repo", "mean"),
            lines_accepted=("lines_accepted", "sum"), mean_prompt_length=("prompt_length", "mean"),
        )

    with phase("sessions and 5-day author-repo links"):
        events = pd.concat([tokens[["session_id", "user_id", "ts"]], prompts[["session_id", "user_id", "ts"]]])
        sessions = events.sort_values("ts").groupby("session_id").agg(
            user_id=("user_id", "first"), started_at=("ts", "min"), ended_at=("ts", "max"))
        sessions["tokens"] = tokens.groupby("session_id")["tokens"].sum()
        sessions["tokens"] = sessions["tokens"].fillna(0)
        sessions["prompts"] = prompts.groupby("session_id").size()
        sessions["prompts"] = sessions["prompts"].fillna(0)
        sessions["exact_repeat_share"] = prompts.groupby("session_id")["repeat_in_session"].mean()
        sessions["week_start"] = _week_start(sessions["started_at"])
        session_repos = (prompts.loc[prompts["repo"].notna(), ["session_id", "repo"]].drop_duplicates()
                         .merge(sessions.reset_index()[["session_id", "user_id", "started_at", "ended_at"]], on="session_id"))
        merged_changes = changes[changes["merged_at"].notna()]
        links = session_repos.merge(merged_changes[["change_id", "repo", "author_id", "merged_at"]],
                                    left_on=["user_id", "repo"], right_on=["author_id", "repo"])
        window = pd.Timedelta(days=LINK_WINDOW_DAYS)
        links = links[(links["merged_at"] >= links["started_at"]) & (links["merged_at"] <= links["ended_at"] + window)]
        links = links.drop_duplicates(["session_id", "change_id"])
        successes = deployments[deployments["status"] == "success"]
        deployed_ids = set(successes["change_ids"].explode().dropna())
        links["deployed"] = links["change_id"].isin(deployed_ids)
        per_session = links.groupby("session_id").agg(linked_changes=("change_id", "nunique"), shipped=("deployed", "any"))
        sessions = sessions.join(per_session)
        sessions["linked_changes"] = sessions["linked_changes"].fillna(0)
        sessions["shipped"] = sessions["shipped"].fillna(False).astype(bool)
        sessions["unshipped_tokens"] = sessions["tokens"].where(~sessions["shipped"], 0)
        shipping = sessions.groupby(["user_id", "week_start"]).agg(
            session_tokens=("tokens", "sum"), unshipped_tokens=("unshipped_tokens", "sum"))

        changes["week_start"] = _week_start(changes["merged_at"])
        changes["deployed"] = changes["change_id"].isin(deployed_ids)
        changes["tiny"] = (changes["lines_added"].fillna(0) + changes["lines_deleted"].fillna(0)) <= 10
        change_weeks = (changes[changes["merged_at"].notna()].rename(columns={"author_id": "user_id"})
                        .groupby(["user_id", "week_start"])
                        .agg(merged_changes=("change_id", "size"), deployed_changes=("deployed", "sum"),
                             tiny_change_share=("tiny", "mean")))

    with phase("user-week features"):
        features = (volume.join(repetition, how="outer").join(shipping, how="left").join(change_weeks, how="left")
                    .fillna(0).reset_index().merge(people, on="user_id", how="left"))
        features["unshipped_token_share"] = np.where(
            features["session_tokens"] > 0, features["unshipped_tokens"] / features["session_tokens"], 0.0)
        features["tokens_per_merged_change"] = features["tokens"] / features["merged_changes"].where(
            features["merged_changes"] > 0, 1)
        features["tokens_per_prompt"] = features["tokens"] / features["prompts"].where(features["prompts"] > 0, 1)

    user_week_columns = ["tokens", "cost_usd", "requests", "sessions", "prompts", "exact_repeat_share",
                         "exact_repeat_share_week", "no_repo_prompt_share", "mean_prompt_length", "merged_changes",
                         "deployed_changes", "tiny_change_share", "unshipped_token_share",
                         "tokens_per_merged_change", "tokens_per_prompt"]
    session_columns = ["tokens", "prompts", "exact_repeat_share", "linked_changes"]
    with phase("isolation forests"):
        matrix = np.log1p(features[user_week_columns].astype(float).clip(lower=0).to_numpy())
        features["anomaly"] = -IsolationForest(n_estimators=100, random_state=0).fit(matrix).score_samples(matrix)
        sessions["duration_minutes"] = (sessions["ended_at"] - sessions["started_at"]).dt.total_seconds() / 60
        session_matrix = np.log1p(sessions[[*session_columns, "duration_minutes"]].fillna(0).astype(float)
                                  .clip(lower=0).to_numpy())
        sessions["anomaly"] = -IsolationForest(n_estimators=100, random_state=0).fit(session_matrix).score_samples(
            session_matrix)

    return {"user_weeks": len(features), "sessions": len(sessions), "links": len(links),
            "prompts": len(prompts), "requests": len(tokens)}
