"""flag_run_ups: the weeks that rose into a week a rule flagged are flagged as its run-up."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from detectors.run_up import flag_run_ups, run_up_inputs
from detectors.scoring import EVIDENCE_DTYPE, SCORE_COLUMNS, check_columns, default_config

FIRST = date(2026, 9, 7)
RULE = {
    "name": "sustained", "level": "user_week", "weight": 1.0, "conditions": ["unmerged_token_share >= 0.35"],
    "run_up": {"rising": "tokens * unmerged_token_share", "rising_label": "unmerged tokens", "weeks": 3,
               "max_growth": 3.0, "conditions": ["unmerged_token_share >= 0.25"],
               "wasted_cost": "cost_usd * unmerged_token_share", "reason": "{unmerged_token_share:pct} unmerged"},
}


def _config(*rules: dict) -> dict:
    config = default_config()
    config["rules"] = list(rules)
    return config


def _features(unmerged_tokens: dict[str, list[float]], share: float = 0.5) -> pl.DataFrame:
    """One row per person and week from FIRST: `unmerged_tokens` at `share` of the week's tokens."""
    rows = [{"user_id": user, "week_start": FIRST + timedelta(days=7 * i), "tokens": value / share,
             "unmerged_token_share": share, "cost_usd": value / share / 1e6, "merged_changes": 3}
            for user, values in unmerged_tokens.items() for i, value in enumerate(values)]
    return pl.DataFrame(rows)


def _scored(features: pl.DataFrame, flagged: dict[tuple[str, int], list[str]]) -> pl.DataFrame:
    """User-week scores as score_level leaves them: `flagged` maps (person, week index) to detectors."""
    index = ((pl.col("week_start") - pl.lit(FIRST)).dt.total_days() // 7).cast(pl.Int64)
    key = pl.concat_str("user_id", pl.lit(":"), index.cast(pl.String))
    detectors = {f"{u}:{i}": d for (u, i), d in flagged.items()}
    hit = key.is_in(list(detectors))
    return features.select("user_id", "week_start", "tokens", "cost_usd").with_columns(
        pl.when(hit).then(0.9).otherwise(0.2).alias("score"),
        hit.alias("flagged"),
        pl.when(hit).then(pl.lit("high")).alias("severity"),
        key.replace_strict(detectors, default=[], return_dtype=pl.List(pl.String)).alias("detectors"),
        pl.when(hit).then(pl.lit("sustained: 60% unmerged")).otherwise(pl.lit("not flagged: no rule fired"))
        .alias("reasons"),
        pl.lit([], dtype=EVIDENCE_DTYPE).alias("evidence"),
        pl.when(hit).then(pl.col("cost_usd") / 2).otherwise(0.0).alias("wasted_cost_usd"),
        *[pl.lit(None, dtype=SCORE_COLUMNS[c]).alias(c) for c in ("rule_score", "model_score", "iforest_z", "ensemble_z")],
    ).cast({**SCORE_COLUMNS, "tokens": pl.Float64})


def test_the_weeks_that_rose_into_a_flagged_week_are_its_run_up() -> None:
    # u1 ramps 1 -> 2 -> 4 -> 7 -> 10 (millions of unmerged tokens); week 4 is flagged by the rule
    features = _features({"u1": [1e6, 2e6, 4e6, 7e6, 10e6], "u2": [1e6, 2e6, 4e6, 7e6, 10e6]})
    scored = _scored(features, {("u1", 4): ["rule:sustained", "iforest"]})
    out = flag_run_ups(features, scored, _config(RULE))
    assert out.columns == scored.columns
    got = {(r["user_id"], r["week_start"]): r for r in out.iter_rows(named=True)}
    # three weeks back, each under the next and at least a third of it; u2 has no flagged week
    assert sorted(got) == [("u1", FIRST + timedelta(days=7 * i)) for i in (1, 2, 3)]
    week3 = got[("u1", FIRST + timedelta(days=21))]
    assert week3["flagged"] and week3["detectors"] == ["run_up:sustained"]
    assert week3["score"] == pytest.approx(0.9 * (7 / 10) ** 0.5) and week3["severity"] == "medium"
    assert week3["wasted_cost_usd"] == pytest.approx(14 * 0.5)
    assert week3["reasons"] == ("run-up to the week of 2026-10-05 that sustained flagged (score 0.9): unmerged "
                                "tokens 7M this week, 10M the week after, 10M in the flagged week; 50% unmerged")
    evidence = {e["feature"]: e for e in week3["evidence"]}
    assert evidence["rising"]["value"] == 7e6 and evidence["rising"]["baseline"] == 10e6
    assert evidence["week_score"]["text"] == ("week of 2026-10-05 flagged by rule sustained, score 0.9 "
                                              "(flag user_week:u1:2026-10-05)")
    assert evidence["unmerged_token_share"]["baseline"] == 0.25
    week1 = got[("u1", FIRST + timedelta(days=7))]
    assert week1["score"] == pytest.approx(0.9 * 0.2 ** 0.5)
    assert "2M this week, 4M the week after, 10M in the flagged week" in week1["reasons"]


def test_a_jump_a_fall_or_a_week_unlike_it_ends_the_run_up() -> None:
    config = _config(RULE)
    # a burn week is more than 3x the week before: nothing before it belongs to a rise
    jump = _features({"u1": [1e6, 2e6, 10e6]})
    assert flag_run_ups(jump, _scored(jump, {("u1", 2): ["rule:sustained"]}), config).height == 0
    # a week above the next is not rising into it
    fall = _features({"u1": [5e6, 4e6, 6e6]})
    out = flag_run_ups(fall, _scored(fall, {("u1", 2): ["rule:sustained"]}), config)
    assert out.get_column("week_start").to_list() == [FIRST + timedelta(days=7)]
    # under the run-up's conditions (20% unmerged < 25%): not the same behaviour
    quiet = _features({"u1": [1e6, 2e6, 3e6]}, share=0.2)
    assert flag_run_ups(quiet, _scored(quiet, {("u1", 2): ["rule:sustained"]}), config).height == 0
    # another rule's flag is no anchor
    other = _features({"u1": [1e6, 2e6, 3e6]})
    assert flag_run_ups(other, _scored(other, {("u1", 2): ["rule:burn"]}), config).height == 0


def test_a_week_away_is_stepped_over_two_end_the_run_up() -> None:
    # u1 has no usage in week 3 (a week off), u2 none in weeks 2 and 3; both are flagged in week 4
    features = _features({"u1": [1e6, 2e6, 4e6, 0, 7e6], "u2": [1e6, 2e6, 0, 0, 7e6]}).filter(pl.col("tokens") > 0)
    scored = _scored(features, {("u1", 4): ["rule:sustained"], ("u2", 4): ["rule:sustained"]})
    out = flag_run_ups(features, scored, _config(RULE))
    assert sorted(out.select("user_id", "week_start").rows()) == [
        ("u1", FIRST + timedelta(days=7 * i)) for i in (0, 1, 2)]
    assert "4M this week, 7M the week after, 7M in the flagged week" in out.filter(
        pl.col("week_start") == FIRST + timedelta(days=14)).get_column("reasons")[0]


def test_a_flagged_week_is_passed_through_unchanged() -> None:
    features = _features({"u1": [1e6, 2e6, 4e6, 7e6]})
    scored = _scored(features, {("u1", 3): ["rule:sustained"], ("u1", 2): ["iforest"]})
    out = flag_run_ups(features, scored, _config(RULE))
    assert out.get_column("week_start").to_list() == [FIRST + timedelta(days=7 * i) for i in (0, 1)]
    # only `weeks` weeks back
    limited = flag_run_ups(features, scored, _config({**RULE, "run_up": {**RULE["run_up"], "weeks": 2}}))
    assert limited.get_column("week_start").to_list() == [FIRST + timedelta(days=7)]


def test_no_run_up_configured_or_nothing_scored() -> None:
    features = _features({"u1": [1e6, 2e6, 4e6]})
    scored = _scored(features, {("u1", 2): ["rule:sustained"]})
    plain = {k: v for k, v in RULE.items() if k != "run_up"}
    assert flag_run_ups(features, scored, _config(plain)).height == 0
    assert run_up_inputs(_config(plain)) == ([], [])
    assert run_up_inputs(_config(RULE)) == (["user_id", "week_start", "cost_usd", "tokens", "unmerged_token_share"],
                                            ["rule:sustained"])
    assert flag_run_ups(features, scored.head(0), _config(RULE)).height == 0


def test_a_bad_run_up_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="run_up needs rising"):
        check_columns(_config({**RULE, "run_up": {"weeks": 2}}), {"user_week": ["unmerged_token_share"]})
    with pytest.raises(ValueError, match="max_growth > 1"):
        check_columns(_config({**RULE, "run_up": {**RULE["run_up"], "max_growth": 1.0}}), {"user_week": []})
    with pytest.raises(ValueError, match="run-up.*tokens"):
        check_columns(_config(RULE), {"user_week": ["unmerged_token_share", "cost_usd"]})
