"""flag_week_sessions: the sessions a flagged week's rule names are flagged at session level."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from detectors.rules import Rule
from detectors.scoring import EVIDENCE_DTYPE, SCORE_COLUMNS, default_config
from detectors.week_sessions import flag_week_sessions

WEEK = date(2026, 10, 5)
RULE = {
    "name": "unshipped_volume", "level": "user_week", "weight": 1.0,
    "conditions": ["tokens_company_z >= 2"], "wasted_cost": "cost_usd * unmerged_token_share",
    "sessions": {"conditions": ["unmerged == true"], "reason": "fed no merged change: {tokens:tok} tokens"},
}


def _config(*rules: dict) -> dict:
    config = default_config()
    config["rules"] = list(rules)
    return config


def _sessions() -> pl.DataFrame:
    return pl.DataFrame({
        "session_id": ["burn-1", "burn-2", "shipped", "elsewhere", "own-flag"],
        "user_id": ["u1", "u1", "u1", "u2", "u1"],
        "week_start": [WEEK] * 5,
        "tokens": [4_000_000, 3_000_000, 1_000_000, 5_000_000, 2_000_000],
        "cost_usd": [8.0, 6.0, 2.0, 10.0, 4.0],
        "unmerged": [True, True, False, True, True],
    })


def _scored(sessions: pl.DataFrame, flagged: dict[str, float]) -> pl.DataFrame:
    """Session scores as score_level leaves them: `flagged` maps session ids to their own score."""
    own = pl.col("session_id").replace_strict(flagged, default=None, return_dtype=pl.Float64)
    hit = pl.col("session_id").is_in(list(flagged))
    return sessions.select("session_id", "user_id", "week_start", "tokens", "cost_usd").with_columns(
        own.fill_null(0.1).alias("score"),
        hit.alias("flagged"),
        pl.when(hit).then(pl.lit("medium")).alias("severity"),
        pl.when(hit).then(pl.lit(["rule:idle_agent"])).otherwise(pl.lit([], dtype=pl.List(pl.String))).alias("detectors"),
        pl.when(hit).then(pl.lit("idle agent: 40 calls")).otherwise(pl.lit("not flagged: no rule fired")).alias("reasons"),
        pl.lit([], dtype=EVIDENCE_DTYPE).alias("evidence"),
        pl.when(hit).then(pl.col("cost_usd")).otherwise(0.0).alias("wasted_cost_usd"),
        *[pl.lit(None, dtype=SCORE_COLUMNS[c]).alias(c) for c in ("rule_score", "model_score", "iforest_z", "ensemble_z")],
    ).cast(SCORE_COLUMNS)


def _weeks(detectors: list[str], *, flagged: bool = True, score: float = 0.9) -> pl.DataFrame:
    return pl.DataFrame({
        "user_id": ["u1", "u2"], "week_start": [WEEK, WEEK], "score": [score, 0.2],
        "flagged": [flagged, False], "detectors": [detectors, []],
    })


def test_the_week_rule_flags_the_sessions_its_waste_is_made_of() -> None:
    sessions = _sessions()
    scored = _scored(sessions, {"own-flag": 0.95})
    out = flag_week_sessions(sessions, scored, _weeks(["rule:unshipped_volume", "iforest"]), _config(RULE))
    assert out.columns == scored.columns and out.get_column("session_id").to_list() == scored.get_column("session_id").to_list()
    got = {r["session_id"]: r for r in out.iter_rows(named=True)}
    burn = got["burn-1"]
    assert burn["flagged"] and burn["detectors"] == ["week_rule:unshipped_volume"]
    assert burn["score"] == 0.9 and burn["severity"] == "high"  # the week's score; default high_score 0.85
    assert burn["wasted_cost_usd"] == 8.0
    assert burn["reasons"] == ("unshipped volume flagged the week of 2026-10-05 (week score 0.9): "
                               "this session fed no merged change: 4M tokens")
    evidence = {e["feature"]: e for e in burn["evidence"]}
    assert evidence["week_score"]["value"] == 0.9 and evidence["unmerged"]["value"] == 1.0
    assert evidence["week_score"]["text"] == ("week of 2026-10-05 flagged by rule unshipped_volume, score 0.9 "
                                              "(flag user_week:u1:2026-10-05)")
    assert {e["detector"] for e in burn["evidence"]} == {"week_rule:unshipped_volume"}
    # a session the rule does not name, and another person's, are left as they were
    for untouched in ("shipped", "elsewhere"):
        assert got[untouched] == {c: v for c, v in scored.filter(pl.col("session_id") == untouched).row(0, named=True).items()}
    # a session flagged on its own keeps its score, detectors and reasons, and gains the week's
    own = got["own-flag"]
    assert own["score"] == 0.95 and own["detectors"] == ["rule:idle_agent", "week_rule:unshipped_volume"]
    assert own["reasons"].startswith("idle agent: 40 calls; unshipped volume flagged the week")


def test_a_session_smaller_than_the_weeks_typical_one_ranks_lower() -> None:
    sessions = _sessions()  # median session: 3M tokens
    out = flag_week_sessions(sessions, _scored(sessions, {}), _weeks(["rule:unshipped_volume"]), _config(RULE))
    got = {r["session_id"]: r for r in out.iter_rows(named=True)}
    assert got["burn-1"]["score"] == 0.9 and got["burn-2"]["score"] == 0.9  # 4M and 3M: the week's score
    small = got["own-flag"]  # 2M: the week's score x sqrt(2/3)
    assert small["flagged"] and small["score"] == pytest.approx(0.9 * (2 / 3) ** 0.5)
    assert small["severity"] == "medium"  # default medium_score 0.65, high 0.85
    size = next(e for e in small["evidence"] if e["feature"] == "tokens")
    assert (size["value"], size["baseline"]) == (2_000_000, 3_000_000)
    week = next(e for e in small["evidence"] if e["feature"] == "week_score")
    assert (week["value"], week["contribution"]) == (0.9, pytest.approx(small["score"]))  # what the session took
    assert size["text"] == "tokens 2M against the week's median session 3M: the week's score x 0.82"


def test_a_session_under_a_tenth_of_the_weeks_typical_one_is_not_named() -> None:
    tiny = pl.DataFrame({"session_id": ["tiny"], "user_id": ["u1"], "week_start": [WEEK], "tokens": [200_000],
                         "cost_usd": [0.4], "unmerged": [True]})
    sessions = pl.concat([_sessions(), tiny])  # median 2.5M: 200k is 0.08 of it (policy 0.1)
    out = flag_week_sessions(sessions, _scored(sessions, {}), _weeks(["rule:unshipped_volume"]), _config(RULE))
    assert out.filter(pl.col("flagged")).get_column("session_id").to_list() == ["burn-1", "burn-2", "own-flag"]


@pytest.mark.parametrize("weeks", [
    _weeks(["rule:unshipped_volume"], flagged=False),  # the rule fired but the week is not flagged
    _weeks(["iforest", "ensemble"]),                   # flagged by the models: no rule names sessions
    _weeks(["rule:other_rule"]),                       # flagged by a rule without a session list
])
def test_nothing_changes_without_a_flagging_rule_that_names_sessions(weeks: pl.DataFrame) -> None:
    sessions = _sessions()
    scored = _scored(sessions, {})
    assert flag_week_sessions(sessions, scored, weeks, _config(RULE)).equals(scored)


def test_an_unknown_value_does_not_select_a_session() -> None:
    rule = {**RULE, "sessions": {"conditions": ["deployed == false"]}}
    sessions = _sessions().with_columns(pl.Series("deployed", [False, None, True, False, False], dtype=pl.Boolean))
    out = flag_week_sessions(sessions, _scored(sessions, {}), _weeks(["rule:unshipped_volume"]), _config(rule))
    flagged = out.filter(pl.col("flagged")).get_column("session_id").to_list()
    assert flagged == ["burn-1", "own-flag"]  # burn-2's deployment is unknown (NULL): not "not deployed"
    assert out.filter(pl.col("session_id") == "burn-1").item(0, "reasons").endswith("this session deployed == false")


@pytest.mark.parametrize("selection, missing", [
    ({"conditions": ["codeless == true"]}, "codeless"),
    ({"conditions": ["unmerged == true"], "reason": "kept {lines_accepted:int} lines"}, "lines_accepted"),
])
def test_a_session_list_naming_a_missing_column_is_an_error(selection: dict, missing: str) -> None:
    sessions = _sessions()
    with pytest.raises(ValueError, match=rf"unshipped_volume: its sessions use columns .* \['{missing}'\]"):
        flag_week_sessions(sessions, _scored(sessions, {}), _weeks(["rule:unshipped_volume"]),
                           _config({**RULE, "sessions": selection}))


def test_only_a_user_week_rule_names_sessions() -> None:
    with pytest.raises(ValueError, match="only a user_week rule names its sessions"):
        Rule.parse({**RULE, "level": "session"})
    with pytest.raises(ValueError, match="sessions needs conditions"):
        Rule.parse({**RULE, "sessions": {"reason": "x"}})




def test_some_of_a_weeks_sessions_with_the_weeks_median_size_equal_all_of_them() -> None:
    # a run-up week reads only its people's sessions (flows.run_ups): sizes still count against the whole week
    sessions = _sessions()
    scored = _scored(sessions, {"own-flag": 0.95})
    weeks = _weeks(["rule:unshipped_volume"])
    whole = flag_week_sessions(sessions, scored, weeks, _config(RULE)).filter(pl.col("user_id") == "u1")
    mine = sessions.filter(pl.col("user_id") == "u1")
    typical = float(sessions.get_column("tokens").median())
    part = flag_week_sessions(mine, _scored(mine, {"own-flag": 0.95}), weeks, _config(RULE), typical_tokens=typical)
    assert part.to_dicts() == whole.to_dicts()
    # without it, the part's own median (2.5M, not 3M) would be the sessions' yardstick
    alone = flag_week_sessions(mine, _scored(mine, {"own-flag": 0.95}), weeks, _config(RULE))
    assert alone.to_dicts() != whole.to_dicts()


def test_several_weeks_at_once_equal_each_week_alone() -> None:
    # a scoring partition holds a few weeks: each session is sized against its own week's median
    later = date(2026, 10, 12)
    other = _sessions().with_columns(week_start=pl.lit(later), tokens=pl.col("tokens") * 10,
                                     session_id=pl.col("session_id") + "-later")
    weeks = pl.concat([_weeks(["rule:unshipped_volume"]), _weeks(["rule:unshipped_volume"]).with_columns(
        week_start=pl.lit(later))])
    alone = pl.concat([
        flag_week_sessions(week, _scored(week, {}), weeks.filter(pl.col("week_start") == day), _config(RULE))
        for week, day in ((_sessions(), WEEK), (other, later))
    ])
    both = pl.concat([_sessions(), other])
    together = flag_week_sessions(both, _scored(both, {}), weeks, _config(RULE))
    assert together.to_dicts() == alone.to_dicts()
    assert together.get_column("flagged").sum() == 6  # burn-1, burn-2, own-flag in each week
