"""The sessions behind a flagged week: a user-week rule that prices its waste as a share of the
week's tokens (sessions that fed no merged change, kept no code, idled) says which sessions that
share is made of (its ``sessions`` table in the config), and those sessions of a week it flagged
are flagged at session level too. Each session-level rule sees one session; gaming that is
dressed as ordinary work (a disguised burner, a ramp, a colluding team) is only visible across
the week, and an analyst asking "which sessions were the waste?" needs the answer per session.

A selected session gets::

    flagged          true
    score            max(its own score, the week's score x size), size = sqrt(min(1, tokens / the
                     median tokens of the week's sessions)): a session smaller than the week's
                     typical one holds little of the waste and ranks below the big ones; one under
                     ``week_session_min_size`` (policy, 0.1) of it is not named at all
    detectors        + week_rule:<rule> for each rule that selected it
    reasons          the week's rule, its score, and the session's part (the rule's reason)
    evidence         + the week's score and each session condition, with their values
    wasted_cost_usd  max(its own, the rule's session ``wasted_cost``), at most its cost

Rows only ever gain a flag here; the week's own flag, reasons and waste are unchanged (the
session waste is the week's, seen per session: finance totals read the user-week level).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from detectors.wording import format_value
from detectors.rules import WeekSessions, parse_rules
from detectors.scoring import evidence_item, level_policy, severity

RULE_PREFIX = "week_rule:"


def flag_week_sessions(
    sessions: pl.DataFrame, scored_sessions: pl.DataFrame, scored_user_weeks: pl.DataFrame,
    config: Mapping[str, Any], *, typical_tokens: float | None = None,
) -> pl.DataFrame:
    """``scored_sessions`` (the session level's ``score_level`` output for the feature rows
    ``sessions``, in the same order; one week or several) with the sessions of flagged weeks that
    their week's rules name flagged too; same columns and order. ``typical_tokens``: the median
    tokens of the week's sessions when ``sessions`` holds only some of one week's sessions
    (default: the median of each week's sessions in ``sessions``)."""
    rules = [(r.name, r.sessions) for r in parse_rules(config.get("rules", []), "user_week") if r.sessions]
    if not rules or sessions.height == 0 or scored_user_weeks.height == 0:
        return scored_sessions
    fired = (
        scored_user_weeks.filter(pl.col("flagged"))
        .select("user_id", "week_start", pl.col("score").alias("__week_score"), pl.col("detectors").alias("__rule"))
        .explode("__rule")
        .filter(pl.col("__rule").str.starts_with("rule:"))
        .with_columns(pl.col("__rule").str.strip_prefix("rule:"))
    )
    if fired.height == 0:
        return scored_sessions
    for name, selection in rules:
        if problem := selection.missing_columns(name, sessions.columns):
            raise ValueError(problem)
    policy = level_policy(config, "session")
    typical = (pl.col("tokens").median().over("week_start") if typical_tokens is None
               else pl.lit(typical_tokens, dtype=pl.Float64))
    relative = pl.when(pl.col("__typical").fill_null(0) != 0).then(pl.col("tokens") / pl.col("__typical")).otherwise(1.0)
    # one lazy query: the sessions of flagged weeks first (few), then each firing rule's choice; on
    # polars' in-memory engine, which runs a query this small in 40% less time than its default
    # (streaming) one (1M, 8 weeks: 0.6-0.7 s against 1.0-1.2 s, the same rows)
    weeks = fired.lazy()
    rows = (
        sessions.lazy().with_row_index("__row").with_columns(typical.cast(pl.Float64).alias("__typical"))
        .join(weeks.select("user_id", "week_start").unique(), on=["user_id", "week_start"], how="semi")
        .filter(relative.fill_null(1.0) >= policy["week_session_min_size"])
        .with_columns(relative.clip(0.0, 1.0).sqrt().fill_null(1.0).alias("__size"))
    )
    firing = set(fired.get_column("__rule").unique())
    picked = []
    for name, selection in rules:
        if name not in firing:
            continue
        chosen = rows.join(weeks.filter(pl.col("__rule") == name), on=["user_id", "week_start"], how="inner")
        picked.append(chosen.filter(selection.selected()).select(
            "__row",
            pl.lit(RULE_PREFIX + name).alias("__detector"),
            (pl.col("__week_score") * pl.col("__size")).alias("__week_score"),
            selection.wasted_expr().clip(lower_bound=0.0).alias("__wasted"),
            pl.concat_str(
                pl.lit(f"{name.replace('_', ' ')} flagged the week of "), pl.col("week_start").cast(pl.String),
                pl.lit(" (week score "), format_value(pl.col("__week_score"), "f2"), pl.lit("): this session "),
                selection.reason_expr(),
            ).alias("__text"),
            _week_evidence(name, selection).alias("__evidence"),
        ))
    if not picked:
        return scored_sessions
    per_row = pl.concat(picked).sort("__row", "__detector").group_by("__row", maintain_order=True).agg(
        pl.col("__detector"), pl.col("__week_score").max(), pl.col("__wasted").max(),
        pl.col("__text").str.join("; "),
        pl.col("__evidence").list.explode(keep_nulls=False, empty_as_null=False),
    ).collect(engine="in-memory")
    score = pl.max_horizontal("score", "__week_score")
    was_flagged = pl.col("flagged")
    out = scored_sessions.with_row_index("__row").join(per_row, on="__row", how="left", maintain_order="left")
    selected = pl.col("__detector").is_not_null()
    return out.with_columns(
        pl.when(selected).then(score).otherwise(pl.col("score")).alias("score"),
        (was_flagged | selected).alias("flagged"),
        pl.when(selected).then(pl.concat_list("detectors", "__detector")).otherwise(pl.col("detectors")).alias("detectors"),
        pl.when(selected & was_flagged).then(pl.concat_str("reasons", pl.lit("; "), "__text"))
        .when(selected).then(pl.col("__text")).otherwise(pl.col("reasons")).alias("reasons"),
        pl.when(selected).then(pl.concat_list("evidence", "__evidence")).otherwise(pl.col("evidence")).alias("evidence"),
        pl.when(selected).then(pl.min_horizontal(pl.max_horizontal("wasted_cost_usd", "__wasted"), pl.col("cost_usd")))
        .otherwise(pl.col("wasted_cost_usd")).alias("wasted_cost_usd"),
    ).with_columns(
        pl.when(selected).then(severity(pl.col("score"), policy)).otherwise(pl.col("severity")).alias("severity"),
    ).select(scored_sessions.columns)


def _week_evidence(name: str, selection: WeekSessions) -> pl.Expr:
    """A selected session's evidence rows: the week's score (and the score the session took from
    it), its size against the week's median session, and each of the rule's session conditions."""
    week = pl.col("week_start").cast(pl.String)
    week_score = _evidence(name, "week_score", pl.col("__week_score"), None, pl.col("__week_score") * pl.col("__size"),
                           pl.concat_str(pl.lit("week of "), week, pl.lit(f" flagged by rule {name}, score "),
                                         format_value(pl.col("__week_score"), "f2"),
                                         pl.lit(" (flag user_week:"), pl.col("user_id"), pl.lit(":"), week, pl.lit(")")))
    size = _evidence(name, "tokens", pl.col("tokens"), pl.col("__typical"), pl.lit(0.0),
                     pl.concat_str(pl.lit("tokens "), format_value(pl.col("tokens"), "tok"),
                                   pl.lit(" against the week's median session "),
                                   format_value(pl.col("__typical"), "tok"),
                                   pl.lit(": the week's score x "), format_value(pl.col("__size"), "f2")))
    conditions = [
        _evidence(name, c.feature, pl.col(c.feature), None if c.threshold is None else float(c.threshold), pl.lit(0.0),
                  pl.concat_str(pl.lit(c.feature.replace("_", " ") + " "), c.value_text(),
                                pl.lit(f" (week rule {name}: {c.describe()})")))
        for c in selection.conditions
    ]
    return pl.concat_list([week_score, size, *conditions])


def _evidence(rule: str, feature: str, value: pl.Expr, baseline: pl.Expr | float | None, contribution: pl.Expr,
              text: pl.Expr) -> pl.Expr:
    return evidence_item(RULE_PREFIX + rule, feature, value, baseline, contribution, text)
