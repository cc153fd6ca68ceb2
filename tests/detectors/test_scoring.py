"""score_level: the output table, the flag policy, reasons, evidence and wasted cost."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from detectors.wording import feature_label, humanize
from detectors.scoring import (
    EVIDENCE_DTYPE, SCORE_COLUMNS, default_config, detectors_fingerprint, merge_config, score_level,
)
from tests.detectors.synthetic import GAMING_PERSONAS, HARD_PERSONAS, SESSION_GAMING, SESSION_HARD


def test_output_shape_types_and_order(scored_user_weeks: pl.DataFrame, user_week_table: pl.DataFrame) -> None:
    assert scored_user_weeks.height == user_week_table.height
    assert scored_user_weeks.get_column("user_id").to_list() == user_week_table.get_column("user_id").to_list()
    for name, dtype in SCORE_COLUMNS.items():
        assert scored_user_weeks.schema[name] == dtype, name
    assert scored_user_weeks.columns[:4] == ["user_id", "week_start", "team", "org"]
    score = scored_user_weeks.get_column("score")
    assert score.min() >= 0.0 and score.max() <= 1.0


def test_flags_every_gaming_user_week_and_no_legit_one(scored_user_weeks: pl.DataFrame) -> None:
    gaming = scored_user_weeks.filter(pl.col("persona").is_in(list(GAMING_PERSONAS)))
    assert gaming.get_column("flagged").all(), gaming.filter(~pl.col("flagged"))
    legit = scored_user_weeks.filter(pl.col("persona").is_in(["normal", *HARD_PERSONAS]))
    assert not legit.get_column("flagged").any(), legit.filter(pl.col("flagged"))
    # the ranking agrees: every gamer scores above every hard case and normal row
    assert gaming.get_column("score").min() > legit.get_column("score").max()


def test_flags_every_gaming_session_and_no_legit_one(scored_sessions: pl.DataFrame) -> None:
    gaming = scored_sessions.filter(pl.col("persona").is_in(list(SESSION_GAMING)))
    assert gaming.get_column("flagged").all()
    legit = scored_sessions.filter(pl.col("persona").is_in(["normal", *SESSION_HARD]))
    assert not legit.get_column("flagged").any()
    assert scored_sessions.schema["linked_change_ids"] == pl.List(pl.String)


def test_detectors_and_severity_of_flagged_rows(scored_user_weeks: pl.DataFrame) -> None:
    flagged = scored_user_weeks.filter(pl.col("flagged"))
    for row in flagged.iter_rows(named=True):
        assert f"rule:{row['tactic']}" in row["detectors"]
        assert row["severity"] in ("high", "medium", "low")
    unflagged = scored_user_weeks.filter(~pl.col("flagged"))
    assert unflagged.get_column("severity").null_count() == unflagged.height
    assert unflagged.get_column("detectors").list.len().max() == 0
    assert unflagged.get_column("evidence").list.len().max() == 0
    assert unflagged.get_column("reasons").str.starts_with("not flagged: ").all()


def test_reasons_carry_the_numbers_that_fired(scored_user_weeks: pl.DataFrame, user_week_table: pl.DataFrame) -> None:
    looper = scored_user_weeks.filter(pl.col("persona") == "looper").row(0, named=True)
    assert looper["reasons"].startswith("prompt loop: 85% of 900 prompts near-identical")
    assert "up to 80 in a row" in looper["reasons"] and "gap variation 0.06" in looper["reasons"]
    burner = scored_user_weeks.filter(pl.col("persona") == "burner").row(0, named=True)
    tokens = user_week_table.filter(pl.col("user_id") == burner["user_id"]).get_column("tokens").item()
    assert burner["reasons"].startswith(f"burn without shipping: 100% of {humanize(tokens, 'tok')} tokens")
    assert "in sessions linked to nothing deployed; 85% of prompts without a repository" in burner["reasons"]


def test_reasons_name_the_features_that_drove_the_models(scored_user_weeks: pl.DataFrame) -> None:
    agreed = 0
    for row in scored_user_weeks.filter(pl.col("flagged")).iter_rows(named=True):
        evidence = pl.DataFrame(row["evidence"], schema=EVIDENCE_DTYPE.inner.to_schema())
        models = evidence.filter(pl.col("detector").is_in(["iforest", "ensemble"]))
        assert models.height > 0
        rules = evidence.filter(pl.col("detector").str.starts_with("rule:"))
        assert set(rules.get_column("detector")) == {d for d in row["detectors"] if d.startswith("rule:")}
        if "unusual for the models (" not in row["reasons"]:  # a rule flagged it alone: the reason says so
            assert "the models do not find it unusual (" in row["reasons"], row["reasons"]
            continue
        agreed += 1
        top = models.sort("contribution", descending=True).row(0, named=True)
        assert feature_label(top["feature"]) in row["reasons"]
        assert top["text"] in row["reasons"]
    assert agreed > 0


def test_injected_feature_tops_the_model_evidence(scored_user_weeks: pl.DataFrame) -> None:
    splitter = scored_user_weeks.filter(pl.col("persona") == "splitter").row(0, named=True)
    evidence = pl.DataFrame(splitter["evidence"], schema=EVIDENCE_DTYPE.inner.to_schema())
    model_features = set(evidence.filter(pl.col("detector") == "iforest").get_column("feature"))
    assert model_features & {"tiny_change_share", "merged_changes_team_z", "deployments_per_change"}


def test_wasted_cost(scored_user_weeks: pl.DataFrame, scored_sessions: pl.DataFrame) -> None:
    for scored in (scored_user_weeks, scored_sessions):
        wasted, cost = scored.get_column("wasted_cost_usd"), scored.get_column("cost_usd")
        assert (wasted >= 0).all() and (wasted <= cost + 1e-12).all()
        assert scored.filter(~pl.col("flagged")).get_column("wasted_cost_usd").max() == 0.0
    uw = scored_user_weeks
    burner = uw.filter(pl.col("persona") == "burner")
    assert burner.get_column("wasted_cost_usd").to_list() == pytest.approx(
        burner.get_column("unshipped_cost_usd").to_list())
    splitter = uw.filter(pl.col("persona") == "splitter")
    assert splitter.get_column("wasted_cost_usd").max() == 0.0  # splitting wastes deployments, not tokens
    loop = scored_sessions.filter(pl.col("persona") == "loop")
    assert loop.get_column("wasted_cost_usd").to_list() == pytest.approx(loop.get_column("cost_usd").to_list())


def test_scores_are_deterministic(user_week_table: pl.DataFrame, config: dict,
                                  scored_user_weeks: pl.DataFrame) -> None:
    again = score_level(user_week_table, "user_week", config)
    assert again.equals(scored_user_weeks.drop("persona", "is_gaming", "tactic"))


def test_model_only_flags_explain_themselves(user_week_table: pl.DataFrame, config: dict) -> None:
    models_only = merge_config(config, {"policy": {"model_extreme_z": 5.0},
                                        "levels": {"user_week": {"detectors": ["iforest", "ensemble"]}}})
    out = score_level(user_week_table, "user_week", models_only)
    flagged = out.filter(pl.col("flagged"))
    assert flagged.height > 0
    assert (flagged.get_column("iforest_z") >= 5.0).all() and (flagged.get_column("ensemble_z") >= 5.0).all()
    assert flagged.get_column("reasons").str.starts_with("unusual for the models (isolation forest z ").all()
    assert flagged.get_column("rule_score").max() == 0.0
    assert flagged.get_column("wasted_cost_usd").to_list() == pytest.approx(
        flagged.get_column("unshipped_cost_usd").to_list())


def test_small_tables_are_scored_by_rules_alone(user_week_table: pl.DataFrame, config: dict) -> None:
    small = user_week_table.filter(pl.col("persona").is_in(["looper", "explorer", "normal"])).head(3)
    small = pl.concat([small, user_week_table.filter(pl.col("persona").is_in(["looper", "explorer"]))])
    out = score_level(small, "user_week", config)
    assert out.get_column("iforest_z").null_count() == out.height
    looper = out.filter(pl.col("user_id").is_in(
        user_week_table.filter(pl.col("persona") == "looper").get_column("user_id").implode()))
    assert looper.get_column("flagged").all()
    assert out.filter(~pl.col("flagged")).get_column("reasons").to_list()[0].startswith("not flagged: no rule fired")


def test_near_miss_reason_when_models_disagree(user_week_table: pl.DataFrame, config: dict) -> None:
    never_alone = {"agree_z": 1e9, "rule_alone_score": 1.1, "model_extreme_z": float("inf")}
    strict = merge_config(config, {"policy": never_alone})
    out = score_level(user_week_table.filter(pl.col("persona").is_in(["normal", "looper"])), "user_week", strict)
    assert not out.get_column("flagged").any()
    reasons = out.filter(pl.col("rule_score") > 0).get_column("reasons")
    assert reasons.str.starts_with("not flagged: rule prompt_loop").all()
    assert reasons.str.contains("fired but the models did not agree").all()


def test_empty_table(user_week_table: pl.DataFrame, config: dict) -> None:
    out = score_level(user_week_table.clear(), "user_week", config)
    assert out.height == 0 and out.schema["evidence"] == EVIDENCE_DTYPE


def test_merge_config_overrides_rules_by_name_and_level() -> None:
    base = default_config()
    merged = merge_config(base, {
        "policy": {"agree_z": 3.0},
        "rules": [{"name": "prompt_loop", "level": "session", "weight": 0.5},
                  {"name": "idle_agent", "enabled": False, "level": "user_week"},
                  {"name": "new_rule", "level": "session", "conditions": ["tokens >= 1"]}],
    })
    assert merged["policy"]["agree_z"] == 3.0 and merged["policy"]["top_features"] == base["policy"]["top_features"]
    by_key = {(r["name"], r["level"]): r for r in merged["rules"]}
    assert by_key[("prompt_loop", "session")]["weight"] == 0.5
    untouched = next(r for r in base["rules"] if (r["name"], r["level"]) == ("prompt_loop", "user_week"))
    assert by_key[("prompt_loop", "user_week")] == untouched
    assert by_key[("idle_agent", "user_week")]["enabled"] is False
    assert ("new_rule", "session") in by_key
    assert base["rules"][0].get("enabled", True)  # the base is not modified


def test_fingerprint_follows_the_settings_not_their_spelling() -> None:
    base = default_config()
    assert detectors_fingerprint(base) == detectors_fingerprint(merge_config(default_config(), {}))
    assert detectors_fingerprint(base) == detectors_fingerprint(dict(reversed(list(base.items()))))  # key order
    stricter = merge_config(base, {"rules": [{"name": "idle_agent", "level": "session",
                                              "conditions": [{"feature": "requests", "op": ">=", "threshold": 40}]}]})
    assert detectors_fingerprint(stricter) != detectors_fingerprint(base)
    assert detectors_fingerprint(merge_config(base, {"policy": {"agree_z": 2.5}})) != detectors_fingerprint(base)


def test_model_libraries_load_ahead_of_the_first_fit() -> None:
    # a fresh interpreter: importing the detectors loads no model library; load_model_libraries does
    code = (
        "import sys\n"
        "from detectors.config import default_config\n"
        "from detectors.scoring import load_model_libraries\n"
        "assert 'sklearn.ensemble' not in sys.modules and 'pyod' not in sys.modules\n"
        "load_model_libraries(default_config())\n"
        "missing = {'sklearn.ensemble', 'pyod.models.hbos', 'pyod.models.ecod', 'pyod.models.copod'} - set(sys.modules)\n"
        "assert not missing, missing\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_settings_reading_missing_columns_are_found_before_scoring() -> None:
    from detectors.scoring import check_columns

    config = default_config()
    config["rules"] = [
        {"name": "unshipped", "level": "user_week", "conditions": ["tokens_company_z >= 2"],
         "sessions": {"conditions": ["unmerged == true"]}},
        {"name": "loop", "level": "session", "conditions": ["near_repeat_share >= 0.5"]},
    ]
    config["levels"]["session"]["model"]["features"] = ["tokens"]
    config["levels"]["user_week"]["model"]["features"] = ["tokens", "prompts"]
    check_columns(config, {"user_week": ["tokens", "prompts", "tokens_company_z"],
                           "session": ["user_id", "week_start", "tokens", "unmerged", "near_repeat_share"]})
    with pytest.raises(ValueError) as found:
        check_columns(config, {"user_week": ["tokens"], "session": ["user_id", "week_start", "tokens"]})
    assert str(found.value) == (
        "rule unshipped: its sessions use columns the session features lack: ['unmerged']; "
        "model features: ['prompts'] not in the user_week features; "
        "rule unshipped: ['tokens_company_z'] not in the user_week features; "
        "rule loop: ['near_repeat_share'] not in the session features")


def test_unflagged_rows_rank_by_how_near_they_came_to_a_rule(user_week_table: pl.DataFrame, config: dict) -> None:
    # out of reach for every row: the busiest is half a scale short of it
    tokens = user_week_table.get_column("tokens").cast(pl.Float64)
    threshold = 2 * float(tokens.max())
    rules = [{
        "name": "big_volume", "level": "user_week", "weight": 1.0, "reason": "{tokens:tok} tokens",
        "conditions": [{"feature": "tokens", "op": ">=", "threshold": threshold, "scale": threshold}],
    }]
    near = {**merge_config(config, {"policy": {"model_extreme_z": float("inf")}}), "rules": rules}
    off = {**merge_config(near, {"policy": {"near_miss_share": 0.0}}), "rules": rules}
    with_near, without = score_level(user_week_table, "user_week", near), score_level(user_week_table, "user_week", off)
    expected = (0.5 * 0.9 * (1 - (threshold - tokens) / threshold)).clip(lower_bound=without.get_column("score"))
    assert not with_near.get_column("flagged").any()
    assert with_near.get_column("score").to_list() == pytest.approx(expected.to_list())
    busiest = with_near.row(int(tokens.arg_max()), named=True)
    assert "(nearest: rule big_volume, 0.22)" in busiest["reasons"]
    assert "nearest" not in without.row(int(tokens.arg_max()), named=True)["reasons"]


def test_rows_only_the_models_find_unusual_score_a_share_of_the_models_score(
    user_week_table: pl.DataFrame, config: dict,
) -> None:
    """No rule fired and not flagged: unfired_model_share x the models' score (near misses off);
    their order among themselves is kept, and flagged rows score as before."""
    plain = merge_config(config, {"policy": {"near_miss_share": 0.0, "unfired_model_share": 1.0}})
    shared = merge_config(plain, {"policy": {"unfired_model_share": 0.4}})
    before, after = score_level(user_week_table, "user_week", plain), score_level(user_week_table, "user_week", shared)
    assert after.get_column("flagged").to_list() == before.get_column("flagged").to_list()
    unfired = ~pl.col("flagged") & (pl.col("detectors").list.len() == 0) & pl.col("reasons").str.starts_with(
        "not flagged: no rule fired")
    quiet = before.with_row_index().filter(unfired)
    assert quiet.height > 10 and quiet.get_column("score").max() > 0
    rows = quiet.get_column("index")
    assert after[rows].get_column("score").to_list() == pytest.approx((0.4 * quiet.get_column("score")).to_list())
    flagged = before.get_column("flagged")
    assert after.filter(flagged).get_column("score").to_list() == before.filter(flagged).get_column("score").to_list()


def test_parts_score_as_they_would_alone(user_week_table: pl.DataFrame, config: dict) -> None:
    """fit_by: each part's models are fit on its rows alone, and every row scores, flags and reads
    as it would in its part's own call, a part too small for the models included."""
    weeks = [date(2025, 3, 3), date(2025, 3, 10), date(2025, 3, 17)]
    second = user_week_table.sample(fraction=0.8, seed=5).with_columns(week_start=pl.lit(weeks[1]))
    tiny = user_week_table.filter(pl.col("persona").is_in(["looper", "normal"])).head(4).with_columns(
        week_start=pl.lit(weeks[2]))
    parts = [user_week_table.with_columns(week_start=pl.lit(weeks[0])), second, tiny]
    alone = pl.concat([score_level(part, "user_week", config) for part in parts])
    together = score_level(pl.concat(parts), "user_week", config, fit_by="week_start")
    assert together.drop("evidence").equals(alone.drop("evidence"))
    assert together.get_column("iforest_z").null_count() == tiny.height
    assert together.get_column("flagged").sum() > tiny.height
    evidence = [frame.select(pl.int_range(pl.len()).alias("i"), "evidence").explode("evidence").unnest("evidence")
                for frame in (together, alone)]
    assert_frame_equal(evidence[0], evidence[1], rel_tol=1e-12, abs_tol=1e-15)
