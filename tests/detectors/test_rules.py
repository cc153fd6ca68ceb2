"""RuleDetector: condition parsing, strength scaling, reasons, wasted cost, default rules."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from detectors.rules import Condition, Rule, RuleDetector, parse_rules
from tests.detectors.synthetic import GAMING_PERSONAS, HARD_PERSONAS, SESSION_GAMING, SESSION_HARD


def rule(**overrides: object) -> dict:
    spec = {
        "name": "big", "level": "user_week", "weight": 0.8, "wasted_cost": "cost_usd * share",
        "conditions": [{"feature": "x", "op": ">=", "threshold": 2.0}],
        "reason": "{x:num} x, {share:pct} shared, {cost_usd:usd} spent",
    }
    spec.update(overrides)
    return spec


def test_condition_parses_tables_and_strings() -> None:
    assert Condition.parse("near_repeat_share >= 0.5") == Condition("near_repeat_share", ">=", 0.5)
    assert Condition.parse("deployed == false") == Condition("deployed", "==", False)
    assert Condition.parse("gap_cv is null") == Condition("gap_cv", "is_null")
    assert Condition.parse({"feature": "x", "op": "<=", "threshold": 1, "scale": 2}) == Condition("x", "<=", 1.0, 2.0)
    with pytest.raises(ValueError):
        Condition.parse("x => 1")
    with pytest.raises(ValueError):
        Condition.parse({"feature": "x", "op": "~", "threshold": 1})


def test_strength_grows_with_distance_past_the_threshold() -> None:
    # weight 0.8, floor 0.5, x >= 2 with the default scale |2|: past = (x - 2) / 2 clipped to [0, 1]
    table = pl.DataFrame({"x": [1.9, 2.0, 3.0, 4.0, 9.0, None], "share": 0.5, "cost_usd": 10.0})
    detector = RuleDetector(rules=[rule()]).fit(table)
    assert detector.decision_function(table).tolist() == pytest.approx([0.0, 0.4, 0.6, 0.8, 0.8, 0.0])


def test_strength_averages_conditions_and_any_group() -> None:
    spec = rule(
        conditions=["x >= 2", {"feature": "y", "op": "<=", "threshold": 1.0, "scale": 0.5}],
        any_conditions=["flag == true", "z > 10"],
    )
    table = pl.DataFrame({
        "x": [4.0, 4.0, 4.0], "y": [0.75, 0.75, 0.75], "flag": [True, False, False], "z": [0.0, 15.0, 0.0],
        "share": 0.5, "cost_usd": 10.0,
    })
    detector = RuleDetector(rules=[spec], floor=0.5).fit(table)
    # past: x 1.0, y 0.5; any-group: flag == true -> 1.0 / z > 10 -> 0.5 / none -> not fired
    expected = [0.8 * (0.5 + 0.5 * (1.0 + 0.5 + 1.0) / 3), 0.8 * (0.5 + 0.5 * (1.0 + 0.5 + 0.5) / 3), 0.0]
    assert detector.decision_function(table).tolist() == pytest.approx(expected)


def test_near_miss_grows_as_a_row_comes_closer_and_stays_under_a_fired_rule() -> None:
    # weight 0.8, floor 0.5, share 0.9: x >= 2 (scale 2) and y <= 1 (scale 0.5), any of flag or z > 10
    spec = rule(
        conditions=["x >= 2", {"feature": "y", "op": "<=", "threshold": 1.0, "scale": 0.5}],
        any_conditions=["flag == true", "z > 10"],
    )
    table = pl.DataFrame({
        "x": [1.0, 1.5, 0.0, 1.5, 1.5, None, 4.0], "y": [0.5, 1.25, 0.5, 2.0, 0.5, 0.5, 0.5],
        "flag": [True, True, True, True, False, True, True], "z": [0.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0],
        "share": 0.5, "cost_usd": 10.0,
    })
    detector = RuleDetector(rules=[spec], floor=0.5).fit(table)
    near = detector.near_misses(table, 0.9).get_column("big").to_list()
    # closeness: x 1.0 short is 0.5; x 0.5 short 0.75 and y 0.25 over 0.5; x a whole scale short 0;
    # y two scales over 0; the any-group's nearest (z 1 short of 10, scale 10) 0.9; null x 0; fired 0
    assert near == pytest.approx([0.36 * 0.5, 0.36 * 0.75 * 0.5, 0.0, 0.0, 0.36 * 0.75 * 0.9, 0.0, 0.0])
    assert max(near) < min(s for s in detector.decision_function(table) if s > 0)
    # an equality test is near only when it holds
    flags = pl.DataFrame({"deployed": [False, True, None]})
    assert flags.select(Condition.parse("deployed == false").closeness()).to_series().to_list() == [1.0, 0.0, 0.0]


def test_a_row_with_none_of_a_share_is_not_near_it() -> None:
    # share >= 0.1 of scale 0.4: short distances count against the threshold's own size, so a row
    # at 0 (a whole threshold short) is not near, where 1 - 0.1 / 0.4 would call it 75% there
    frame = pl.DataFrame({"share": [0.0, 0.05, 0.1, None], "count": [0.0, 4.0, 5.0, 1.0]})
    share = Condition.parse({"feature": "share", "op": ">=", "threshold": 0.1, "scale": 0.4})
    count = Condition.parse({"feature": "count", "op": ">=", "threshold": 5, "scale": 20})
    assert frame.select(share.closeness()).to_series().to_list() == pytest.approx([0.0, 0.5, 1.0, 0.0])
    assert frame.select(count.closeness()).to_series().to_list() == pytest.approx([0.0, 0.8, 1.0, 0.2])


def test_a_gate_must_hold_but_grades_nothing() -> None:
    # x >= 2 grades the strength; merged >= 1 only says whom the rule applies to
    spec = rule(conditions=["x >= 2", {"feature": "merged", "op": ">=", "threshold": 1, "gate": True}])
    table = pl.DataFrame({"x": [2.0, 2.0, 3.0], "merged": [9, 0, 1], "share": 0.5, "cost_usd": 10.0})
    detector = RuleDetector(rules=[spec], floor=0.5).fit(table)
    # far past the gate adds nothing: just at x's threshold is the floor (0.8 x 0.5), not (0.5 + 1) / 2
    assert detector.decision_function(table).tolist() == pytest.approx([0.4, 0.0, 0.8 * (0.5 + 0.5 * 0.5)])
    evidence = detector.explain(table)
    assert evidence.filter(pl.col("feature") == "merged").get_column("contribution").to_list() == [0.0, 0.0]
    assert evidence.get_column("contribution").sum() == pytest.approx(0.4 + 0.6)
    only_gates = RuleDetector(rules=[rule(conditions=[{"feature": "x", "op": ">=", "threshold": 2, "gate": True}])]).fit(table)
    assert only_gates.decision_function(table).tolist() == pytest.approx([0.8, 0.8, 0.8])
    assert only_gates.explain(table).get_column("contribution").to_list() == pytest.approx([0.8, 0.8, 0.8])


def test_an_unknown_value_lets_an_unknown_holds_condition_pass_at_its_threshold() -> None:
    # lines <= 0.5 stands for "kept no code"; where no source reports lines the rule's other
    # evidence stands in for it: the unknown value holds, adding no strength; a known 3.0 fails
    lines = {"feature": "lines", "op": "<=", "threshold": 0.5, "scale": 0.5, "unknown_holds": True}
    spec = rule(conditions=["x >= 2", lines])
    table = pl.DataFrame({"x": [4.0, 4.0, 4.0], "lines": [0.0, None, 3.0], "share": 0.5, "cost_usd": 10.0})
    detector = RuleDetector(rules=[spec], floor=0.5).fit(table)
    # x fully past (scale 2); lines 0 fully past, unknown at its threshold
    assert detector.decision_function(table).tolist() == pytest.approx([0.8, 0.8 * (0.5 + 0.5 * 0.5), 0.0])
    assert Condition.parse(lines).describe() == "lines <= 0.5 (or unknown)"
    plain = RuleDetector(rules=[rule(conditions=["x >= 2", {**lines, "unknown_holds": False}])], floor=0.5).fit(table)
    assert plain.decision_function(table).tolist() == pytest.approx([0.8, 0.0, 0.0])


def test_strongest_rule_wins_and_disabled_rules_are_skipped() -> None:
    rules = [rule(), rule(name="small", weight=0.3), rule(name="off", weight=1.0, enabled=False)]
    table = pl.DataFrame({"x": [4.0], "share": 0.5, "cost_usd": 10.0})
    detector = RuleDetector(rules=rules).fit(table)
    assert detector.rule_names_ == ["big", "small"]
    assert detector.strengths(table).row(0) == pytest.approx((0.8, 0.3))
    assert detector.decision_function(table)[0] == pytest.approx(0.8)


def test_reason_is_rendered_with_humanized_numbers() -> None:
    table = pl.DataFrame({"x": [412_000.0], "share": [0.71], "cost_usd": [38.4]})
    parsed = Rule.parse(rule())
    assert table.select(parsed.reason_expr()).item() == "412k x, 71% shared, $38.40 spent"
    assert table.select(parsed.wasted_expr()).item() == pytest.approx(38.4 * 0.71)


def test_reason_shows_a_text_column_as_it_is() -> None:
    table = pl.DataFrame({"x": [3.0, 4.0], "team": ["payments", None]})
    parsed = Rule.parse(rule(reason="the team {team:text}: {x}"))
    assert table.select(parsed.reason_expr()).to_series().to_list() == ["the team payments: 3", "the team n/a: 4"]


def test_an_optional_reason_segment_says_in_words_what_a_source_could_not_tell() -> None:
    table = pl.DataFrame({"x": [3.0, 4.0, 5.0, 6.0], "share": [0.25, None, float("nan"), 0.5],
                          "team": ["payments", "ads", None, "ads"]})
    parsed = Rule.parse(rule(reason="{x} prompts[, {share:pct} without a repository|, repositories not reported]"
                                    "[ in {team:text}]; [{share:pct} and {x}|unknown]"))
    assert table.select(parsed.reason_expr()).to_series().to_list() == [
        "3 prompts, 25% without a repository in payments; 25% and 3",
        "4 prompts, repositories not reported in ads; unknown",
        "5 prompts, repositories not reported; unknown",
        "6 prompts, 50% without a repository in ads; 50% and 6",
    ]


def test_explain_reports_each_condition_of_fired_rules() -> None:
    table = pl.DataFrame({"x": [1.0, 3.0], "deployed": [False, False], "share": 0.5, "cost_usd": 10.0})
    detector = RuleDetector(rules=[rule(conditions=["x >= 2", "deployed == false"])]).fit(table)
    evidence = detector.explain(table)
    assert evidence.get_column("row").to_list() == [1, 1]
    assert evidence.get_column("feature").to_list() == ["x", "deployed"]
    assert evidence.get_column("detector").unique().to_list() == ["rule:big"]
    assert evidence.get_column("baseline").to_list() == [2.0, 0.0]
    # contributions sum to the rule strength: 0.8 * (0.5 + 0.5 * (0.5 + 1) / 2) = 0.7
    assert evidence.get_column("contribution").sum() == pytest.approx(0.7)
    assert evidence.get_column("text").to_list() == [
        "x 3 (rule big: x >= 2)", "deployed no (rule big: deployed == false)",
    ]


def test_missing_columns_and_bad_config_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="lacks|cannot run"):
        RuleDetector(rules=[rule()]).fit(pl.DataFrame({"x": [1.0]}))
    with pytest.raises(ValueError, match="level"):
        parse_rules([rule(level="team")], "user_week")
    with pytest.raises(ValueError, match="duplicate"):
        parse_rules([rule(), rule()], "user_week")


def fired_rules(table: pl.DataFrame, config: dict, level: str) -> pl.DataFrame:
    detector = RuleDetector(rules=config["rules"], level=level).fit(table)
    strengths = detector.strengths(table)
    fired = pl.concat_list([pl.when(pl.col(n) > 0).then(pl.lit(n)) for n in detector.rule_names_]).list.drop_nulls()
    return table.select("persona", "tactic").with_columns(strengths.select(fired.alias("fired")))


def test_default_user_week_rules_fire_on_their_tactic_only(user_week_table: pl.DataFrame, config: dict) -> None:
    fired = fired_rules(user_week_table, config, "user_week")
    for persona, tactic in GAMING_PERSONAS.items():
        rows = fired.filter(pl.col("persona") == persona)
        assert rows.get_column("fired").list.contains(tactic).all(), (persona, rows)
    quiet = fired.filter(pl.col("persona").is_in(["normal", *HARD_PERSONAS]))
    assert quiet.get_column("fired").list.len().sum() == 0, quiet.filter(pl.col("fired").list.len() > 0)


def test_where_the_source_names_no_repositories_the_rules_that_read_them_degrade(
    user_week_table: pl.DataFrame, config: dict
) -> None:
    unknown = [c for c in user_week_table.columns
               if c.startswith(("no_repo_prompt_share", "codeless_repo_sessions", "codeless_repo_token_share"))]
    table = user_week_table.with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in unknown).with_columns(
        # the burner pastes long prompts: their length stands in for the unknown repository share
        mean_prompt_length=pl.when(pl.col("persona") == "burner").then(3000.0).otherwise(pl.col("mean_prompt_length")))
    fired = fired_rules(table, config, "user_week")
    burners = fired.filter(pl.col("persona") == "burner").get_column("fired")
    assert burners.list.contains("long_prompts_without_repository").all()
    assert not burners.list.contains("burn_without_shipping").any()  # it needs the repository share
    quiet = fired.filter(pl.col("persona").is_in(["normal", *HARD_PERSONAS]))
    assert quiet.get_column("fired").list.len().sum() == 0, quiet.filter(pl.col("fired").list.len() > 0)


def test_default_session_rules_fire_on_their_tactic_only(session_table: pl.DataFrame, config: dict) -> None:
    fired = fired_rules(session_table, config, "session")
    for persona, tactic in SESSION_GAMING.items():
        rows = fired.filter(pl.col("persona") == persona)
        assert rows.get_column("fired").list.contains(tactic).all(), (persona, rows)
    quiet = fired.filter(pl.col("persona").is_in(["normal", *SESSION_HARD]))
    assert quiet.get_column("fired").list.len().sum() == 0


def test_every_default_rule_has_a_reason_naming_its_numbers(config: dict) -> None:
    for spec in config["rules"]:
        parsed = Rule.parse(spec)
        assert "{" in parsed.reason and parsed.description, parsed.name
        assert 0 < parsed.weight <= 1
        assert np.isfinite(parsed.weight)
