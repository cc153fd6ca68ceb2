"""The run-up to a flagged week: a slow ramp is caught only once it is large, and the weeks that
rose into it were the same gaming, smaller. A user-week rule with a ``run_up`` table in the config
(``sustained_unmerged_work``: unmerged tokens rising week by week) flags, for each week it flagged,
the weeks just before it that rose into it: walking back from the flagged week over the person's
weeks with usage (a week away is stepped over, two end the walk), a week joins while

    its ``rising`` value < the next week's <= ``max_growth`` x its own   (a rise, not a jump: a
                                                                       burn week dwarfs the one before)
    and the run-up's ``conditions`` hold                                (it already looked like it)

up to ``weeks`` of its weeks back. A week already flagged is passed through, not changed. A run-up week
gets::

    flagged          true
    score            max(its own, the flagged week's score x sqrt(its rising value / the flagged
                     week's)): the smaller its part of the rise, the lower it ranks
    detectors        + run_up:<rule>
    reasons          the flagged week, its score, the rise week by week, and the run-up's reason
    evidence         + the flagged week's score, the rising value against the next week's, and
                     each of the run-up's conditions
    wasted_cost_usd  max(its own, the run-up's ``wasted_cost``), at most its cost

It reads every stored week, so it runs after all weeks are scored (``flows.detect_step``), and a
daily run that rescores a late week updates the run-up of the weeks before it the same way a full
run would. The sessions of a run-up week its rule's ``sessions`` table selects are named at
session level as those of the flagged week are (``detectors.week_sessions``, ``week_rule:<rule>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from detectors.wording import format_value
from detectors.rules import RunUp, parse_rules
from detectors.scoring import evidence_item, level_policy, severity

RULE_PREFIX = "run_up:"
KEYS = ["user_id", "week_start"]


def run_up_inputs(config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """What ``flag_run_ups`` reads: the user-week feature columns (keys first) and the detectors
    whose flagged weeks have a run-up (``rule:<name>``); both empty when no rule has a run-up."""
    rules = [r for r in parse_rules(config.get("rules", []), "user_week") if r.run_up]
    if not rules:
        return [], []
    columns = list(dict.fromkeys([*KEYS, *(c for r in rules for c in sorted(r.run_up.columns))]))
    return columns, [f"rule:{r.name}" for r in rules]


def flag_run_ups(features: pl.DataFrame, scored: pl.DataFrame, config: Mapping[str, Any]) -> pl.DataFrame:
    """The rows of ``scored`` (the user-week scores of every stored week) that join a run-up, with
    its flag added (same columns); none when no week does. ``features``: the user-week feature
    rows of the same weeks, with the columns ``run_up_inputs`` names."""
    rules = [r for r in parse_rules(config.get("rules", []), "user_week") if r.run_up]
    if not rules or scored.height == 0:
        return scored.head(0)
    policy = level_policy(config, "user_week")
    state = scored.select(*KEYS, "flagged", "score", "detectors")
    picked = []
    for rule in rules:
        up = rule.run_up
        # each week's previous week with usage of the same person, a week away at most: a week
        # off does not end a ramp
        weeks = features.join(state, on=KEYS, how="inner").sort(KEYS).select(
            *KEYS, up.rising_expr().alias("__v"), up.selected().alias("__ok"), "flagged",
            pl.col("week_start").shift(1).over("user_id").alias("__prev_week"),
        ).with_columns(
            pl.when(pl.col("week_start") - pl.col("__prev_week") <= pl.duration(days=14)).then(pl.col("__prev_week"))
            .alias("__prev_week"))
        chain = (
            state.filter(pl.col("flagged") & pl.col("detectors").list.contains(f"rule:{rule.name}"))
            .join(weeks.select(*KEYS, "__v", "__prev_week"), on=KEYS)
            .select("user_id", pl.col("week_start").alias("__anchor_week"), pl.col("score").alias("__anchor_score"),
                    pl.col("__v").alias("__anchor_v"), pl.col("week_start").alias("__next_week"),
                    pl.col("__v").alias("__next_v"), pl.col("__prev_week").alias("__next_prev_week"))
        )
        for step in range(1, up.weeks + 1):
            chain = (
                chain.with_columns(pl.col("__next_prev_week").alias("week_start"))
                .join(weeks, on=KEYS, how="inner")
                .filter(pl.col("__ok") & (pl.col("__v") < pl.col("__next_v"))
                        & (pl.col("__next_v") <= up.max_growth * pl.col("__v")))
                .with_columns(pl.lit(step).alias("__step"), pl.lit(rule.name).alias("__rule"))
            )
            picked.append(chain.filter(~pl.col("flagged")))
            chain = chain.select("user_id", "__anchor_week", "__anchor_score", "__anchor_v",
                                 pl.col("week_start").alias("__next_week"), pl.col("__v").alias("__next_v"),
                                 pl.col("__prev_week").alias("__next_prev_week"))
    found = pl.concat(picked, how="diagonal_relaxed") if picked else None
    if found is None or found.height == 0:
        return scored.head(0)
    found = found.with_columns(
        (pl.col("__anchor_score") * (pl.col("__v") / pl.col("__anchor_v")).clip(0.0, 1.0).sqrt()).alias("__run_up_score"),
    ).sort(*KEYS, "__run_up_score", descending=[False, False, True]).unique(KEYS, keep="first", maintain_order=True)
    # the run-ups' reasons and costs read feature columns the scores lack (the scores' own win)
    rows = scored.join(found.drop("flagged"), on=KEYS, how="inner").join(
        features.select(*KEYS, *(c for c in features.columns if c not in scored.columns)), on=KEYS, how="left")
    texts, evidence, wasted = [], [], []
    for rule in rules:
        up, this = rule.run_up, pl.col("__rule") == rule.name
        texts.append(pl.when(this).then(_reason(rule.name, up)))
        evidence.append(pl.when(this).then(_evidence(rule.name, up)))
        wasted.append(pl.when(this).then(up.wasted_expr().clip(lower_bound=0.0)))
    score = pl.max_horizontal("score", "__run_up_score")
    return rows.with_columns(
        score.alias("score"),
        pl.lit(True).alias("flagged"),
        pl.concat_list("detectors", pl.concat_str(pl.lit(RULE_PREFIX), "__rule")).alias("detectors"),
        pl.coalesce(texts).alias("reasons"),
        pl.concat_list("evidence", pl.coalesce(evidence)).alias("evidence"),
        pl.min_horizontal(pl.max_horizontal("wasted_cost_usd", pl.coalesce(wasted)), pl.col("cost_usd"))
        .alias("wasted_cost_usd"),
        severity(score, policy).alias("severity"),
    ).select(scored.columns)


def as_week_rules(run_ups: pl.DataFrame) -> pl.DataFrame:
    """Run-up weeks (``flag_run_ups`` rows) as weeks their rule flagged (``run_up:<rule>`` read as
    ``rule:<rule>``), for ``detectors.week_sessions`` to name the sessions their waste is made of."""
    return run_ups.with_columns(pl.col("detectors").list.eval(pl.element().str.replace(f"^{RULE_PREFIX}", "rule:")))


def _reason(name: str, up: RunUp) -> pl.Expr:
    return pl.concat_str(
        pl.lit("run-up to the week of "), pl.col("__anchor_week").cast(pl.String),
        pl.lit(f" that {name.replace('_', ' ')} flagged (score "), format_value(pl.col("__anchor_score"), "f2"),
        pl.lit(f"): {up.rising_label} "), format_value(pl.col("__v"), "tok"), pl.lit(" this week, "), format_value(pl.col("__next_v"), "tok"), pl.lit(" the week after, "),
        format_value(pl.col("__anchor_v"), "tok"), pl.lit(" in the flagged week; "), up.reason_expr(),
    )


def _evidence(name: str, up: RunUp) -> pl.Expr:
    """A run-up week's evidence rows: the flagged week's score (and the score this week took from
    it), its rising value against the next week's, and each of the run-up's conditions."""
    anchor, detector = pl.col("__anchor_week").cast(pl.String), RULE_PREFIX + name
    items = [
        evidence_item(detector, "week_score", pl.col("__anchor_score"), None, pl.col("__run_up_score"), pl.concat_str(
            pl.lit("week of "), anchor, pl.lit(f" flagged by rule {name}, score "),
            format_value(pl.col("__anchor_score"), "f2"), pl.lit(" (flag user_week:"), pl.col("user_id"),
            pl.lit(":"), anchor, pl.lit(")"))),
        evidence_item(detector, "rising", pl.col("__v"), pl.col("__next_v"), pl.lit(0.0), pl.concat_str(
            pl.lit(f"{up.rising_label} "), format_value(pl.col("__v"), "tok"), pl.lit(", then "),
            format_value(pl.col("__next_v"), "tok"), pl.lit(f" the week after (a rise of at most {up.max_growth:g}x)"))),
        *[evidence_item(detector, c.feature, pl.col(c.feature), None if c.threshold is None else float(c.threshold),
                        pl.lit(0.0), pl.concat_str(pl.lit(c.feature.replace("_", " ") + " "), c.value_text(),
                                                   pl.lit(f" (run-up of rule {name}: {c.describe()})")))
          for c in up.conditions],
    ]
    return pl.concat_list(items)
