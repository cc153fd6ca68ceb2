"""Small synthetic feature tables for detector tests: normal rows, injected gaming rows and
legitimate hard cases, with the columns of docs/features.md (the ones detectors use)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

TEAM_SCALE = {"core": 1.0, "platform": 1.0, "ml": 3.0, "web": 0.7}  # ml: heavy but productive
PEER_FEATURES = (
    "tokens", "cost_usd", "tokens_per_deployed_change", "output_per_request", "unshipped_token_share",
    "unmerged_token_share", "near_repeat_share", "merged_changes", "tiny_change_share", "deployments_per_change", "peak_3h_token_share", "snapshot_window_share",
    "codeless_repo_sessions", "tokens_per_merged_line", "exact_repeat_share_week", "exact_repeat_unkept_share_week",
)
GAMING_PERSONAS = {  # persona -> tactic
    "burner": "burn_without_shipping",
    "looper": "prompt_loop",
    "idler": "idle_agent",
    "splitter": "deployment_splitting",
    "cutter": "tiny_changes_from_few_sessions",  # a splitter whose deployments ship main's head
    "sniper": "snapshot_burst",
    "padder": "regenerate_padding",
    "tiny_shipper": "volume_per_merged_line",
    "unlined_colluder": "unevidenced_volume_vs_company",
    "colluder": "team_codeless_burn",
}
COLLUDING_TEAM, COLLUDING_TEAM_SIZE = "growth", 5  # the colluders are a team of their own
HARD_PERSONAS = ("heavy_shipper", "explorer", "new_hire", "oncall", "non_ai_merger", "unreported_heavy", "researcher")


def _user_week_overrides(persona: str, rng: np.random.Generator) -> dict[str, float]:
    """Per-persona values; token multipliers are applied to the row's normal volume."""
    return {
        "burner": dict(tokens_x=10, merged_changes=0, deployed_changes=0, unshipped_token_share=1.0,
                       lines_accepted_per_ktok=0.05, no_repo_prompt_share=0.85, gap_cv=0.9),
        "looper": dict(tokens_x=4, prompts=900, near_repeat_share=0.85, exact_repeat_share=0.6,
                       longest_near_run=80, gap_cv=0.06, unshipped_token_share=0.95,
                       lines_accepted_per_ktok=0.1, merged_changes=1, deployed_changes=1),
        "idler": dict(tokens_x=7, cache_read_share=0.97, output_input_ratio=0.004, lines_accepted_per_ktok=0.0,
                      unshipped_token_share=1.0, merged_changes=0, deployed_changes=0, prompts=40,
                      requests=2000, output_per_request=45, idle_session_token_share=0.85),
        "splitter": dict(merged_changes=45, deployed_changes=45, ai_merged_changes=44, ai_deployed_changes=44,
                         tiny_change_share=0.96, deployments_per_change=1.0, mean_change_lines=4),
        # a splitter whose changes share deployments (each ships main's head): one session's work cut
        # into 6 tiny changes at a time
        "cutter": dict(merged_changes=30, deployed_changes=30, ai_merged_changes=29, ai_deployed_changes=29,
                       tiny_change_share=0.95, deployments_per_change=0.4, mean_change_lines=5,
                       tiny_changes_per_session=6.0),
        "sniper": dict(tokens_x=5, snapshot_window_share=0.8, peak_3h_token_share=0.62,
                       unshipped_token_share=0.85, merged_changes=2, deployed_changes=2),
        "padder": dict(tokens_x=5, near_repeat_share=0.6, exact_repeat_share=0.45, merged_changes=3,
                       deployed_changes=3, lines_accepted_per_ktok=0.4, gap_cv=1.0),
        # many changes, half of them tiny, released in batches: neither one deployment nor one
        # session per change gives them away
        "heavy_shipper": dict(tokens_x=4, merged_changes=18, deployed_changes=17, unshipped_token_share=0.05,
                              lines_accepted_per_ktok=1.5, tiny_change_share=0.5, deployments_per_change=0.3,
                              tiny_changes_per_session=1.5),
        "explorer": dict(tokens_x=1.3, merged_changes=0, deployed_changes=0, unshipped_token_share=1.0,
                         gap_cv=1.9, no_repo_prompt_share=0.05, lines_accepted_per_ktok=0.3),
        "new_hire": dict(tokens_x=0.9, merged_changes=0, deployed_changes=0, unshipped_token_share=1.0,
                         gap_cv=1.6, lines_accepted_per_ktok=0.4, no_repo_prompt_share=0.2),
        "oncall": dict(night_share=0.55, weekend_share=0.45, off_hours_share=0.6, peak_3h_token_share=0.4,
                       gap_cv=1.4),
        "non_ai_merger": dict(tokens_x=0.3, merged_changes=30, deployed_changes=30, ai_merged_changes=1,
                              ai_deployed_changes=1, tiny_change_share=0.9, deployments_per_change=0.95,
                              mean_change_lines=6, unshipped_token_share=0.7),
        # a disguised burner: heavy volume and one tiny merged change a week
        "tiny_shipper": dict(tokens_x=8, merged_changes=1, deployed_changes=1, mean_change_lines=4,
                             tiny_change_share=1.0, unshipped_token_share=0.2),
        # a colluder whose tool reports no lines: burn sessions of unknown outcome, commits in the real work
        "unlined_colluder": dict(tokens_x=8, merged_changes=6, deployed_changes=5, unshipped_token_share=0.1,
                                 lines_accepted_per_ktok=np.nan, unknown_outcome_token_share=0.75, commits_made=12),
        # a member of a team burning together: a little above the company, half the tokens in codeless sessions
        "colluder": dict(tokens_x=2.5, merged_changes=4, deployed_changes=3, unshipped_token_share=0.7,
                         codeless_repo_sessions=11, codeless_repo_token_share=0.65),
        # a research team's member: heavy exploration that does not merge, merged work in repositories
        # that never deploy
        "researcher": dict(tokens_x=3, merged_changes=6, deployed_changes=0, codeless_repo_sessions=9,
                           codeless_repo_token_share=0.6, repo_deploys=0.0),
        # an honest heavy user whose tool reports neither lines nor commits: nothing is evidenced either way
        "unreported_heavy": dict(tokens_x=3, merged_changes=8, deployed_changes=7, unshipped_token_share=0.0,
                                 lines_accepted_per_ktok=np.nan, unknown_outcome_token_share=0.8, commits_made=0),
    }[persona]


def _peer_columns(df: pl.DataFrame) -> pl.DataFrame:
    """Team, org and company baselines (one org here: the company), and no own history (one week)."""
    exprs = []
    for f in PEER_FEATURES:
        for scope, by in (("team", "team"), ("org", "org"), ("company", "org")):
            med = pl.col(f).median().over(by)
            mad = (pl.col(f) - med).abs().median().over(by)
            scale = 1.4826 * pl.max_horizontal(mad, 0.05 * med.abs(), pl.lit(1e-9))
            exprs += [med.alias(f"{f}_{scope}_median"), ((pl.col(f) - med) / scale).alias(f"{f}_{scope}_z")]
        exprs += [pl.lit(None, dtype=pl.Float64).alias(f"{f}_own_{kind}") for kind in ("median", "z")]
    return df.with_columns(exprs)


def user_weeks(n_normal: int = 320, per_persona: int = 3, seed: int = 7) -> pl.DataFrame:
    """A user_week_peer_features-shaped table with columns persona, is_gaming and tactic."""
    rng = np.random.default_rng(seed)
    personas = ["normal"] * n_normal + [p for p in (*GAMING_PERSONAS, *HARD_PERSONAS)
                                        for _ in range(COLLUDING_TEAM_SIZE if p == "colluder" else per_persona)]
    n = len(personas)
    teams = rng.choice(list(TEAM_SCALE), size=n).astype(object)
    teams[n_normal:] = np.where(np.isin(personas[n_normal:], ["heavy_shipper"]), "ml",
                                rng.choice(["core", "platform", "web"], size=n - n_normal))
    teams[np.array(personas) == "colluder"] = COLLUDING_TEAM
    scale = np.array([TEAM_SCALE.get(t, 1.0) for t in teams])
    col: dict[str, np.ndarray] = {
        "tokens": scale * 1.5e6 * rng.lognormal(0, 0.45, n),
        "prompts": np.round(120 * rng.lognormal(0, 0.35, n)),
        "cache_read_share": rng.uniform(0.6, 0.88, n),
        "output_input_ratio": rng.uniform(0.08, 0.4, n),
        "merged_changes": (1 + rng.poisson(4 * scale)).astype(float),
        "near_repeat_share": rng.beta(1.2, 20, n),
        "longest_near_run": 1.0 + rng.poisson(1.5, n),
        "gap_cv": rng.lognormal(np.log(1.4), 0.25, n),
        "night_share": rng.beta(1, 25, n),
        "weekend_share": rng.beta(1, 15, n),
        "off_hours_share": rng.beta(1, 15, n),
        "peak_3h_token_share": rng.beta(4, 14, n),
        "snapshot_window_share": rng.beta(2, 16, n),
        "lines_accepted_per_ktok": rng.lognormal(0, 0.5, n),
        "no_repo_prompt_share": rng.beta(1, 9, n),
        # under 1,000 characters, as every legitimate week of the generated worlds (the longest 924)
        "mean_prompt_length": np.minimum(rng.lognormal(np.log(350), 0.4, n), 924.0),
        "tiny_change_share": rng.beta(2, 5, n),
        "deployments_per_change": rng.uniform(0.25, 0.6, n),
        "mean_change_lines": rng.lognormal(np.log(120), 0.6, n),
        "unshipped_token_share": rng.beta(2, 6, n),
        "output_per_request": rng.lognormal(np.log(450), 0.3, n),
        "idle_session_token_share": np.zeros(n),
        "codeless_repo_sessions": rng.poisson(2.0, n).astype(float),
        "codeless_repo_token_share": rng.beta(1, 12, n),
        "unknown_outcome_token_share": np.zeros(n),  # lines reported: every outcome known
        "repo_deploys": np.ones(n),  # 1: the person merges into repositories that deploy
    }
    col["commits_made"] = rng.poisson(2 * col["merged_changes"]).astype(float)
    col["tiny_changes_per_session"] = 1.0 + 0.6 * col["tiny_change_share"]  # (no draw: the others stay as they were)
    col["requests"] = np.round(col["prompts"] * rng.uniform(2, 4, n))
    col["deployed_changes"] = rng.binomial(col["merged_changes"].astype(int), 0.85).astype(float)
    # honest work repeats a prompt exactly almost never (the generated worlds: 0 in legitimate weeks)
    col["exact_repeat_share"] = col["near_repeat_share"] * rng.uniform(0.0, 0.15, n)
    col["ai_merged_changes"] = rng.binomial(col["merged_changes"].astype(int), 0.8).astype(float)
    col["ai_deployed_changes"] = np.minimum(col["ai_merged_changes"], col["deployed_changes"])
    for i in range(n_normal, n):
        for key, value in _user_week_overrides(personas[i], rng).items():
            if key == "tokens_x":  # a multiple of the team's typical volume (not of a random draw)
                col["tokens"][i] = scale[i] * 1.5e6 * value
            else:
                col[key][i] = value
    no_deploy = col["deployed_changes"] == 0
    col["unshipped_token_share"] = np.where(no_deploy, 1.0, col["unshipped_token_share"])
    col["ai_deployed_changes"] = np.minimum(col["ai_deployed_changes"], col["deployed_changes"])
    col["ai_merged_changes"] = np.minimum(col["ai_merged_changes"], col["merged_changes"])
    tokens = col["tokens"]
    cost = tokens * 3e-6 * rng.uniform(0.8, 1.2, n)
    df = pl.DataFrame({
        "user_id": [f"u{i:04d}" for i in range(n)],
        "team": teams.tolist(),
        "org": ["eng"] * n,
        "week_start": [date(2025, 3, 3)] * n,
        **{k: v for k, v in col.items()},
        "cost_usd": cost,
        "sessions": np.maximum(1, np.round(col["prompts"] / 15)),
        "active_minutes": col["prompts"] * 2.0,
        "input_tokens": tokens * (1 - col["cache_read_share"]) * 0.8,
        "cache_read_tokens": tokens * col["cache_read_share"],
        "persona": personas,
    }).with_columns(
        output_tokens=pl.col("input_tokens") * pl.col("output_input_ratio"),
        cache_write_tokens=pl.col("tokens") * (1 - pl.col("cache_read_share")) * 0.2,
        requests_per_prompt=pl.col("requests") / pl.col("prompts"),
        tokens_per_merged_change=pl.when(pl.col("merged_changes") > 0)
        .then(pl.col("tokens") / pl.col("merged_changes")),
        tokens_per_deployed_change=pl.when(pl.col("deployed_changes") > 0)
        .then(pl.col("tokens") / pl.col("deployed_changes")),
        cost_per_deployed_change=pl.when(pl.col("deployed_changes") > 0)
        .then(pl.col("cost_usd") / pl.col("deployed_changes")),
        unshipped_cost_usd=pl.col("cost_usd") * pl.col("unshipped_token_share"),
        # sessions that fed no merged change: those of the unshipped ones whose work did not even merge
        unmerged_token_share=pl.when(pl.col("merged_changes") > 0).then(pl.col("unshipped_token_share") * 0.5)
        .otherwise(pl.col("unshipped_token_share")),
        near_repeat_share_week=pl.col("near_repeat_share"),
        exact_repeat_share_week=pl.col("exact_repeat_share"),
        # repeats whose turn kept nothing: most of a padder's, few of anyone else's
        exact_repeat_unkept_share_week=pl.col("exact_repeat_share") * 0.9,
        # padding fills the sessions it pads; anyone else's repeats spread thinly
        repeat_padded_prompt_share_week=pl.when(pl.col("persona").is_in(["padder", "looper"]))
        .then(pl.col("exact_repeat_share") * 0.9).otherwise(pl.col("exact_repeat_share") * 0.2),
        merged_lines=pl.when(pl.col("merged_changes") > 0).then(pl.col("merged_changes") * pl.col("mean_change_lines")),
        is_gaming=pl.col("persona").is_in(list(GAMING_PERSONAS)),
        tactic=pl.col("persona").replace_strict(GAMING_PERSONAS, default=None, return_dtype=pl.String),
    ).with_columns(
        # no merged change -> these ratios are undefined (NULL), as in the feature SQL
        pl.when(pl.col("merged_changes") > 0).then(pl.col(c)).alias(c)
        for c in ("tiny_change_share", "deployments_per_change", "mean_change_lines")
    ).with_columns(
        tiny_merged_changes=(pl.col("merged_changes") * pl.col("tiny_change_share").fill_null(0.0)).round(),
        # the sessions that fed the tiny changes (NULL without one); the changes are AI-assisted in proportion
        tiny_change_sessions=pl.when(pl.col("merged_changes") * pl.col("tiny_change_share").fill_null(0.0) >= 0.5)
        .then((pl.col("ai_merged_changes") * pl.col("tiny_change_share").fill_null(0.0)
               / pl.col("tiny_changes_per_session")).round().clip(lower_bound=1)),
        tokens_per_merged_line=pl.col("tokens") / pl.col("merged_lines"),
        unevidenced_token_share=pl.col("unmerged_token_share") + pl.col("unknown_outcome_token_share"),
    ).with_columns(
        tiny_changes_per_session=pl.when(pl.col("tiny_change_sessions").is_not_null()).then(pl.col("tiny_changes_per_session")),
        # one week, no history: the last three weeks are this one
        active_weeks_3w=pl.lit(1, dtype=pl.Int64), unmerged_token_share_3w=pl.col("unmerged_token_share"),
        merged_changes_3w=pl.col("merged_changes"),
        deploying_repo_merged_changes_3w=pl.col("merged_changes") * pl.col("repo_deploys"),
    )
    return _team_week_columns(_peer_columns(df).with_columns(
        tokens_per_merged_line_company_ratio=pl.col("tokens_per_merged_line") / pl.col("tokens_per_merged_line_company_median"),
        unmerged_excess_share=_excess("unmerged_token_share"), unmerged_excess_share_3w=_excess("unmerged_token_share_3w")))


def _excess(share: str) -> pl.Expr:
    """A share beyond the company's usual unmerged share, as the feature SQL computes it."""
    median = pl.col("unmerged_token_share_company_median")
    return (pl.col(share) - median) / (1 - median)


def _team_week_columns(df: pl.DataFrame) -> pl.DataFrame:
    """The team-week columns of team_week_features (one week: no own history)."""
    return df.with_columns(
        team_people=pl.len().over("team"),
        team_tokens_median=pl.col("tokens").median().over("team"),
        team_tokens_company_z=pl.col("tokens_company_z").median().over("team"),
        team_codeless_repo_sessions_median=pl.col("codeless_repo_sessions").median().over("team"),
        team_codeless_repo_token_share_median=pl.col("codeless_repo_token_share").median().over("team"),
        team_codeless_repo_token_share_own_median=pl.lit(None, dtype=pl.Float64),
        team_codeless_repo_token_share_own_rise=pl.lit(None, dtype=pl.Float64),
    )


SESSION_GAMING = {"loop": "prompt_loop", "idle": "idle_agent", "cadence": "machine_regular_cadence",
                  "burn": "burn_without_shipping"}
SESSION_HARD = ("explorer", "long_agentic", "oncall")


def sessions(n_normal: int = 300, per_kind: int = 3, seed: int = 11) -> pl.DataFrame:
    """A session_features-shaped table with columns persona, is_gaming and tactic."""
    rng = np.random.default_rng(seed)
    kinds = ["normal"] * n_normal + [k for k in (*SESSION_GAMING, *SESSION_HARD) for _ in range(per_kind)]
    n = len(kinds)
    col: dict[str, np.ndarray] = {
        "tokens": 150e3 * rng.lognormal(0, 0.8, n),
        "prompts": 5.0 + rng.poisson(12, n),
        "near_repeat_share": rng.beta(1, 15, n),
        "longest_near_run": 1.0 + rng.poisson(0.7, n),
        "gap_cv": rng.lognormal(np.log(1.3), 0.3, n),
        "median_gap_seconds": rng.lognormal(np.log(90), 0.5, n),
        "lines_accepted_per_ktok": rng.lognormal(0, 0.6, n),
        "output_input_ratio": rng.uniform(0.05, 0.4, n),
        "cache_read_share": rng.uniform(0.5, 0.88, n),
        "no_repo_prompt_share": rng.beta(1, 8, n),
        "mean_prompt_length": rng.lognormal(np.log(300), 0.4, n),
        "deployed": rng.random(n) < 0.6,
        "output_per_request": rng.lognormal(np.log(450), 0.4, n),
    }
    col["requests"] = np.round(col["prompts"] * rng.uniform(2, 5, n))
    col["exact_repeat_share"] = col["near_repeat_share"] * rng.uniform(0.2, 0.6, n)
    overrides = {
        "loop": dict(near_repeat_share=0.9, exact_repeat_share=0.7, longest_near_run=60, gap_cv=0.05, prompts=200,
                     requests=600, median_gap_seconds=20, deployed=False, tokens=2.5e6),
        "idle": dict(cache_read_share=0.98, output_input_ratio=0.003, lines_accepted_per_ktok=0.0, requests=500,
                     deployed=False, tokens=5e6, prompts=10, output_per_request=30),
        "cadence": dict(gap_cv=0.08, prompts=120, requests=360, deployed=False, median_gap_seconds=60),
        "burn": dict(tokens=6e6, no_repo_prompt_share=0.9, lines_accepted_per_ktok=0.02, deployed=False,
                     prompts=30),
        "explorer": dict(prompts=25, gap_cv=1.8, deployed=False, no_repo_prompt_share=0.05,
                         lines_accepted_per_ktok=0.5, tokens=4e5),
        "long_agentic": dict(tokens=3e6, deployed=True, lines_accepted_per_ktok=1.0, cache_read_share=0.9,
                             output_input_ratio=0.05, prompts=40, requests=400),
        "oncall": dict(gap_cv=1.5, deployed=True, prompts=15),
    }
    for i in range(n_normal, n):
        for key, value in overrides[kinds[i]].items():
            col[key][i] = value
    started = [datetime(2025, 3, 3, 9) + timedelta(minutes=37 * i) for i in range(n)]
    return pl.DataFrame({
        "session_id": [f"s{i:04d}" for i in range(n)],
        "user_id": [f"u{i % 40:04d}" for i in range(n)],
        "team": [list(TEAM_SCALE)[i % 4] for i in range(n)],
        "started_at": started,
        "week_start": [date(2025, 3, 3)] * n,
        **col,
        "cost_usd": col["tokens"] * 3e-6,
        "persona": kinds,
    }).with_columns(
        tokens_per_prompt=pl.col("tokens") / pl.col("prompts"),
        requests_per_prompt=pl.col("requests") / pl.col("prompts"),
        active_minutes=pl.col("prompts") * 1.5,
        linked_change_ids=pl.when(pl.col("deployed")).then(pl.lit(["c1"]))
        .otherwise(pl.lit([], dtype=pl.List(pl.String))),
        is_gaming=pl.col("persona").is_in(list(SESSION_GAMING)),
        tactic=pl.col("persona").replace_strict(SESSION_GAMING, default=None, return_dtype=pl.String),
    )
