"""Combine rules, isolation forest and the pyod ensemble into one score per row, a flag
policy that needs no labels, plain-words reasons, evidence and wasted cost.

Score (in [0, 1], comparable across the rows of one run)::

    model_score = mean over models of  z+ / (z+ + model_z_half),  z+ = max(robust z, 0)
    score       = 1 - (1 - rule_score) * (1 - model_score)

``rule_score`` is the strongest fired rule's strength (``detectors.rules``); a model's
robust z is its score against the median and 1.4826 x MAD of its own training scores.
A row that is not flagged and that no rule fired on scores ``unfired_model_share`` x its
model_score, or its nearest miss of a rule (``Rule.near_miss``: at most ``near_miss_share`` of the
rule's strength at its thresholds) when that is higher, so rows that came close to a rule rank
above rows only the models find unusual: a watch list, not a flag (``near_miss_share = 0`` and
``unfired_model_share = 1`` give the plain score).

Flag policy (no labels, no contamination share)::

    flagged = (a rule fires and the highest model z >= agree_z)
              or rule_score >= rule_alone_score          (a rule far past its thresholds)
              or every model's z >= model_extreme_z      (models agree it is extreme)

Tables (or parts of one, ``fit_by``) with fewer than ``min_model_rows`` rows are scored by the
rules alone, and then a fired rule flags on its own. Severity of a flagged row: ``high`` when
score >= ``high_score``, ``medium`` when >= ``medium_score``, else ``low``.

Wasted cost of a flagged row: the largest ``wasted_cost`` expression among its fired
rules (``model_only_wasted_cost`` of the level when only the models flagged it), clipped
to [0, cost]; 0 when not flagged.

Reasons: flagged rows get each fired rule's rendered reason (strongest first), then what
the models found unusual (the top occlusion features with value and baseline). Unflagged
rows get a short ``not flagged: ...`` line saying why (no rule fired, or a rule fired but
the models did not agree), so an analyst can see near misses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from importlib import metadata, resources
from typing import Any

import numpy as np
import polars as pl

from detectors.base import EVIDENCE_SCHEMA, MatrixDetector, TrainingMatrix, empty_evidence, evidence_text
from detectors.config import default_config, merge_config
from detectors.ensemble import PyodEnsembleDetector, check_members
from detectors.iforest import IsolationForestDetector
from detectors.rules import RuleDetector, parse_rules
from detectors.wording import format_value

EVIDENCE_STRUCT = pl.Struct({k: v for k, v in EVIDENCE_SCHEMA.items() if k != "row"})
EVIDENCE_DTYPE = pl.List(EVIDENCE_STRUCT)
MODEL_NAMES = {"iforest": "isolation forest", "ensemble": "pyod ensemble"}
MODEL_LIBRARIES = ("scikit-learn", "pyod", "numpy", "scipy", "polars")  # their versions are part of detectors_fingerprint
SCORE_COLUMNS: dict[str, pl.DataType] = {
    "score": pl.Float64,
    "flagged": pl.Boolean,
    "severity": pl.String,
    "detectors": pl.List(pl.String),
    "reasons": pl.String,
    "evidence": EVIDENCE_DTYPE,
    "wasted_cost_usd": pl.Float64,
    "rule_score": pl.Float64,
    "model_score": pl.Float64,
    "iforest_z": pl.Float64,
    "ensemble_z": pl.Float64,
}
"""Columns ``score_level`` adds after the key and passthrough columns."""


def evidence_item(detector: str, feature: str, value: pl.Expr, baseline: pl.Expr | float | None,
                  contribution: pl.Expr, text: pl.Expr) -> pl.Expr:
    """One evidence row (a struct of ``EVIDENCE_STRUCT``) as an expression over a row's columns."""
    baseline = baseline if isinstance(baseline, pl.Expr) else pl.lit(baseline, dtype=pl.Float64)
    return pl.struct(
        pl.lit(detector).alias("detector"), pl.lit(feature).alias("feature"), value.cast(pl.Float64).alias("value"),
        baseline.cast(pl.Float64).alias("baseline"), contribution.cast(pl.Float64).alias("contribution"),
        text.alias("text"),
    ).cast(EVIDENCE_STRUCT)


def level_policy(config: Mapping[str, Any], level: str) -> dict[str, Any]:
    policy = dict(config.get("policy", {}))
    policy.update(config["levels"][level].get("policy", {}))
    required = ("rule_floor", "agree_z", "rule_alone_score", "model_extreme_z", "model_z_half",
                "min_model_rows", "high_score", "medium_score", "top_features", "week_session_min_size",
                "near_miss_share", "unfired_model_share")
    missing = [k for k in required if k not in policy]
    if missing:
        raise ValueError(f"policy lacks {missing}; start from detectors.scoring.default_config()")
    return policy


def severity(score: pl.Expr, policy: Mapping[str, Any]) -> pl.Expr:
    """Severity of a flagged row's score: high, medium or low."""
    return (pl.when(score >= policy["high_score"]).then(pl.lit("high"))
            .when(score >= policy["medium_score"]).then(pl.lit("medium"))
            .otherwise(pl.lit("low")))


def _models(features: pl.DataFrame, level_cfg: Mapping[str, Any]) -> list[MatrixDetector]:
    """The level's enabled models, not fitted yet."""
    enabled = level_cfg.get("detectors", ["rules", "iforest", "ensemble"])
    model_cfg = dict(level_cfg.get("model", {}))
    models: list[MatrixDetector] = []
    if "iforest" in enabled:
        models.append(IsolationForestDetector(**model_cfg, **level_cfg.get("iforest", {})))
    if "ensemble" in enabled:
        models.append(PyodEnsembleDetector(**model_cfg, **level_cfg.get("ensemble", {})))
    return models


def check_config(config: Mapping[str, Any]) -> None:
    """ValueError for settings scoring would fail on later (unparsable rules, unknown pyod members),
    found before a run starts; nothing is imported."""
    for level, level_cfg in config.get("levels", {}).items():
        parse_rules(config.get("rules", []), level)
        check_members(level_cfg.get("ensemble", {}).get("members", ()))


def check_columns(config: Mapping[str, Any], columns: Mapping[str, Collection[str]]) -> None:
    """ValueError naming the feature columns the settings read that a level's table lacks
    (``columns``: level -> its table's columns): its rules' conditions and reasons, the sessions
    its user-week rules name, its models' features; found before any week is scored."""
    problems = []
    for level, level_cfg in config.get("levels", {}).items():
        if level not in columns:
            continue
        have = set(columns[level])
        used = {"model features": set(level_cfg.get("model", {}).get("features", ()))}
        for rule in parse_rules(config.get("rules", []), level):
            used[f"rule {rule.name}"] = set(rule.columns)
            if rule.sessions is not None and "session" in columns:
                problems += filter(None, [rule.sessions.missing_columns(rule.name, columns["session"])])
            if rule.run_up is not None:
                used[f"rule {rule.name}'s run-up"] = rule.run_up.columns
        problems += [f"{what}: {sorted(need - have)} not in the {level} features" for what, need in used.items() if need - have]
    if problems:
        raise ValueError("; ".join(problems))


def detectors_fingerprint(config: Mapping[str, Any]) -> str:
    """sha256 of the full detector config, this package's code and the versions of the libraries
    the models come from: what a week's stored scores were computed with. Scores of another
    fingerprint are not mixed with new ones (a run then rescores every week:
    pipeline.publish.scores.weeks_to_score)."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for module in sorted(resources.files("detectors").iterdir(), key=lambda path: path.name):
        if module.name.endswith(".py"):
            digest.update(module.name.encode() + b"\0" + module.read_bytes())
    for library in MODEL_LIBRARIES:
        digest.update(f"{library}=={metadata.version(library)}".encode())
    return digest.hexdigest()


def load_model_libraries(config: Mapping[str, Any]) -> None:
    """Import what every configured level's models fit with (scikit-learn, pyod and numba: seconds
    of imports that detection would otherwise wait for); a run calls it on a thread as it starts."""
    for level_cfg in config.get("levels", {}).values():
        for model in _models(pl.DataFrame(), level_cfg):
            model.load_libraries()


def _empty_output(features: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    return features.select(columns).with_columns(
        [pl.lit(None, dtype=dtype).alias(name) for name, dtype in SCORE_COLUMNS.items()]
    ).clear()


def score_level(features: pl.DataFrame, level: str, config: Mapping[str, Any], *,
                fit_by: str | None = None) -> pl.DataFrame:
    """Score every row of one feature table (``level``: ``"user_week"`` or ``"session"``).

    Returns the level's key and passthrough columns (those present) plus ``SCORE_COLUMNS``,
    one row per input row, in input order. ``config`` is a full config dict, e.g.
    ``merge_config(default_config(), user_overrides)``. ``fit_by``: a column whose values split
    the table into parts the models are fit on apart (``week_start``: each week against itself);
    the rules, the policy and the texts run once over the whole table, as their cost is mostly
    per call, not per row. Each part scores as it would alone.
    """
    if level not in config.get("levels", {}):
        raise ValueError(f"config has no [levels.{level}] section")
    level_cfg = config["levels"][level]
    policy = level_policy(config, level)
    keys = list(level_cfg.get("keys", []))
    missing = [k for k in keys if k not in features.columns]
    if missing:
        raise ValueError(f"{level} features lack key columns {missing}")
    passthrough = [c for c in level_cfg.get("passthrough", []) if c in features.columns and c not in keys]
    out_columns = keys + passthrough
    if features.height == 0:
        return _empty_output(features, out_columns)
    cost = pl.col(level_cfg.get("cost_column", "cost_usd")).cast(pl.Float64).fill_null(0.0).clip(lower_bound=0.0)

    enabled = level_cfg.get("detectors", ["rules", "iforest", "ensemble"])
    rules = RuleDetector(
        rules=config.get("rules", []) if "rules" in enabled else [], level=level, floor=policy["rule_floor"]
    ).fit(features)
    fits, z = _fit_models(features, level_cfg, policy, fit_by)
    modeled = np.zeros(features.height, dtype=bool)
    for rows, models in fits:
        modeled[rows] = bool(models)
    rule_names = rules.rule_names_
    strengths = rules.strengths(features).rename({n: f"__s_{n}" for n in rule_names})
    near = rules.near_misses(features, float(policy["near_miss_share"])).rename({n: f"__n_{n}" for n in rule_names})
    frame = pl.concat([features, strengths, near], how="horizontal").with_columns(
        (pl.max_horizontal(near.columns) if rule_names else pl.lit(0.0)).alias("__near"),
        pl.Series("__row", np.arange(features.height), dtype=pl.Int64),
        pl.Series("__modeled", modeled, dtype=pl.Boolean),
        *[pl.Series(f"{name}_z", values, dtype=pl.Float64) for name, values in z.items()],
    ).with_columns(pl.when(pl.col("__modeled")).then(pl.col(f"{name}_z")).alias(f"{name}_z") for name in z)
    for name in ("iforest", "ensemble"):
        if name not in z:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(f"{name}_z"))

    rule_score = pl.max_horizontal([pl.col(f"__s_{n}") for n in rule_names]) if rule_names else pl.lit(0.0)
    z_cols = [pl.col(f"{name}_z") for name in z]
    if z_cols:
        half = float(policy["model_z_half"])
        squashed = [zc.clip(lower_bound=0.0) / (zc.clip(lower_bound=0.0) + half) for zc in z_cols]
        model_score = pl.sum_horizontal(squashed) / len(squashed)
        max_z, min_z = pl.max_horizontal(z_cols), pl.min_horizontal(z_cols)
        # a part too small for the models is scored by the rules alone: a fired rule flags on its own
        agree = pl.when(pl.col("__modeled")).then(max_z >= policy["agree_z"]).otherwise(True)
        extreme = pl.when(pl.col("__modeled")).then(min_z >= policy["model_extreme_z"]).otherwise(False)
    else:
        model_score, max_z = pl.lit(0.0), pl.lit(None, dtype=pl.Float64)
        agree, extreme = pl.lit(True), pl.lit(False)
    frame = frame.with_columns(
        rule_score.alias("rule_score"), model_score.alias("model_score"), max_z.alias("__max_z"),
        agree.alias("__agree"), extreme.alias("__extreme"),
    ).with_columns(
        (1 - (1 - pl.col("rule_score")) * (1 - pl.col("model_score"))).clip(0.0, 1.0).alias("score"),
        (pl.col("rule_score") > 0).alias("__fired"),
    ).with_columns(
        ((pl.col("__fired") & pl.col("__agree")) | (pl.col("rule_score") >= policy["rule_alone_score"])
         | pl.col("__extreme")).alias("flagged"),
    ).with_columns(
        pl.when(pl.col("flagged")).then(severity(pl.col("score"), policy)).alias("severity"),
        pl.when(pl.col("flagged")).then(pl.col("score"))
        .otherwise(pl.max_horizontal(
            pl.when(pl.col("__fired")).then(pl.col("score")).otherwise(pl.col("score") * policy["unfired_model_share"]),
            "__near"))
        .alias("score"),
    )

    # ---- the rest only for rows where a rule fired or that are flagged (few): their texts
    # would cost memory on every row of a large table
    hit = frame.filter(pl.col("__fired") | pl.col("flagged"))
    hit = _explain_hits(hit, features, rules, fits, z, level_cfg, policy, cost)
    nearest = pl.concat_str(
        pl.lit(" (nearest: rule "),
        pl.lit(rule_names, dtype=pl.List(pl.String)).list.get(pl.concat_list(near.columns).list.arg_max()),
        pl.lit(", "), format_value(pl.col("__near"), "f2"), pl.lit(")"),
    ) if rule_names else pl.lit(None, dtype=pl.String)
    rest_reason = pl.concat_str(
        pl.lit("not flagged: no rule fired"),
        pl.when(pl.col("__near") > 0).then(nearest).otherwise(pl.lit("")),
        pl.when(pl.col("__modeled")).then(
            pl.concat_str(pl.lit("; highest model z "), format_value(pl.col("__max_z"), "f1"))).otherwise(pl.lit("")),
    )
    frame = frame.join(hit, on="__row", how="left", maintain_order="left").with_columns(
        pl.col("detectors").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        pl.col("evidence").fill_null(pl.lit([], dtype=EVIDENCE_DTYPE)),
        pl.col("wasted_cost_usd").fill_null(0.0),
        pl.coalesce(pl.col("reasons"), rest_reason).alias("reasons"),
    )
    return frame.select(out_columns + list(SCORE_COLUMNS)).cast(SCORE_COLUMNS)


Fits = list[tuple[np.ndarray, list[MatrixDetector]]]
"""Each part's row positions (ascending) and the models fit on its rows alone (none when too few)."""


def _fit_models(features: pl.DataFrame, level_cfg: Mapping[str, Any], policy: Mapping[str, Any],
                fit_by: str | None) -> tuple[Fits, dict[str, np.ndarray]]:
    """The models fit on each part of the table, and each model's robust z on every row (NaN
    where its part had too few rows for the models)."""
    if fit_by is None:
        parts = [np.arange(features.height)]
    else:
        parts = [rows.to_numpy() for rows in features.select(pl.int_range(pl.len()).alias("__row"), fit_by)
                 .group_by(fit_by, maintain_order=True).agg("__row").get_column("__row")]
    fits: Fits = []
    z: dict[str, np.ndarray] = {}
    for rows in parts:
        part = features if rows.size == features.height else features[rows]
        models = _models(part, level_cfg) if part.height >= policy["min_model_rows"] else []
        # models with the same features, fill and sampling share one training matrix
        training: dict[tuple[Any, ...], TrainingMatrix] = {}
        for m in models:
            if m.preparation_key() not in training:
                training[m.preparation_key()] = m.prepare(part)
            scores = m.fit_decision_function(part, training[m.preparation_key()])
            z.setdefault(m.detector_name, np.full(features.height, np.nan))[rows] = m.robust_z(scores)
        fits.append((rows, models))
    return fits, z


def _explain_hits(
    hit: pl.DataFrame, features: pl.DataFrame, rules: RuleDetector, fits: Fits,
    z: Mapping[str, np.ndarray], level_cfg: Mapping[str, Any], policy: Mapping[str, Any], cost: pl.Expr,
) -> pl.DataFrame:
    """Detectors, wasted cost, evidence and reasons of the rows where a rule fired or that
    are flagged; returns ``__row`` and those columns."""
    hit = hit.join(_fired_rules(hit, rules), on="__row", how="left", maintain_order="left").with_columns(
        pl.col("__fired_list").fill_null(pl.lit([], dtype=FIRED_DTYPE)))
    model_lists = [pl.when(pl.col(f"{name}_z") >= policy["agree_z"]).then(pl.lit(name)) for name in z]
    # from the rendered list, not its expression: that would render every reason again
    detectors = pl.concat_list(
        [pl.col("__fired_list").list.eval(pl.element().struct.field("d"))]
        + ([pl.concat_list(model_lists).list.drop_nulls()] if model_lists else [])
    )
    wasted_rules = [pl.when(pl.col(f"__s_{r.name}") > 0).then(r.wasted_expr()) for r in rules.rules_]
    wasted_rule = pl.max_horizontal(wasted_rules) if wasted_rules else pl.lit(None, dtype=pl.Float64)
    model_only = pl.sql_expr(str(level_cfg.get("model_only_wasted_cost", "0"))).cast(pl.Float64)
    wasted = (
        pl.when(~pl.col("flagged")).then(0.0)
        .when(pl.col("__fired")).then(wasted_rule)
        .otherwise(model_only)
        .fill_null(0.0).fill_nan(0.0)
    )
    hit = hit.with_columns(
        pl.min_horizontal(wasted.clip(lower_bound=0.0), cost).alias("wasted_cost_usd"),
    ).with_columns(
        pl.when(pl.col("flagged")).then(detectors).otherwise(pl.lit([], dtype=pl.List(pl.String)))
        .alias("detectors"),
    )

    # evidence (and the model part of reasons) for flagged rows only
    flagged_idx = hit.filter(pl.col("flagged")).get_column("__row").to_numpy()
    evidence = pl.concat([rules.explain(features, flagged_idx), _model_evidence(features, fits, flagged_idx, policy)])
    per_row = evidence.group_by("row", maintain_order=True).agg(
        pl.struct([c for c in EVIDENCE_SCHEMA if c != "row"]).alias("evidence")
    )
    model_text = (
        evidence.filter(pl.col("detector").is_in(list(z)))
        .sort(["row", "contribution"], descending=[False, True], maintain_order=True)
        .unique(["row", "feature"], keep="first", maintain_order=True)
        .group_by("row", maintain_order=True)
        .agg(pl.col("text").head(int(policy["top_features"])).str.join("; ").alias("__model_text"))
    )
    hit = (
        hit.join(per_row, left_on="__row", right_on="row", how="left", maintain_order="left")
        .join(model_text, left_on="__row", right_on="row", how="left", maintain_order="left")
    )
    return hit.select("__row", "detectors", "evidence", "wasted_cost_usd", _reasons(z, policy).alias("reasons"))


def _model_evidence(features: pl.DataFrame, fits: Fits, flagged: np.ndarray,
                    policy: Mapping[str, Any]) -> pl.DataFrame:
    """Each model's evidence on the flagged rows, from the model fit on each row's part; worded in
    one call for every part (the wording costs per call, not per row)."""
    frames = []
    for rows, models in fits:
        local = np.searchsorted(rows, flagged[np.isin(flagged, rows)])
        if not models or local.size == 0:
            continue
        part = features if rows.size == features.height else features[rows]
        for m in models:
            numbers = m.explain_numbers(part, local, top_k=int(policy["top_features"]))
            frames.append(numbers.with_columns(pl.Series("row", rows[numbers.get_column("row").to_numpy()],
                                                         dtype=pl.Int64)))
    return evidence_text(pl.concat(frames)) if frames else empty_evidence()


FIRED_DTYPE = pl.List(pl.Struct({"s": pl.Float64, "d": pl.String, "t": pl.String}))


def _fired_rules(hit: pl.DataFrame, rules: RuleDetector) -> pl.DataFrame:
    """``__row`` and ``__fired_list``: per row where a rule fired, the rules that did (strength
    ``s``, detector ``d``, reason ``t``), strongest first, ties in rule order. Each rule's reason
    (a large formatting expression) is rendered on the rows where that rule fired only."""
    rows = hit.lazy()
    fired = [
        rows.filter(pl.col(f"__s_{r.name}") > 0).select(
            "__row", pl.col(f"__s_{r.name}").cast(pl.Float64).alias("s"), pl.lit(f"rule:{r.name}").alias("d"),
            pl.concat_str(pl.lit(r.name.replace("_", " ") + ": "), r.reason_expr()).alias("t"),
            pl.lit(order, dtype=pl.Int64).alias("__order"),
        )
        for order, r in enumerate(rules.rules_)
    ]
    if not fired:
        return pl.DataFrame(schema={"__row": pl.Int64, "__fired_list": FIRED_DTYPE})
    return (
        pl.concat(fired).sort(["__row", "s", "__order"], descending=[False, True, False])
        .group_by("__row", maintain_order=True).agg(pl.struct("s", "d", "t").alias("__fired_list"))
        .collect()
    )


def _reasons(z: Mapping[str, np.ndarray], policy: Mapping[str, Any]) -> pl.Expr:
    rule_text = pl.col("__fired_list").list.eval(pl.element().struct.field("t")).list.join("; ")
    rule_names = pl.col("__fired_list").list.eval(pl.element().struct.field("d").str.strip_prefix("rule:"))\
        .list.join(", ")
    z_text = pl.concat_str(
        [pl.concat_str(pl.lit(MODEL_NAMES.get(n, n) + " z "), format_value(pl.col(f"{n}_z"), "f1")) for n in z],
        separator=", ",
    ) if z else pl.lit("")
    models_agree = pl.col("__agree") & pl.col("__modeled")
    model_part = pl.when(models_agree).then(
        pl.concat_str([pl.lit("unusual for the models ("), z_text, pl.lit(")"),
                       pl.concat_str(pl.lit(": "), pl.col("__model_text"))], ignore_nulls=True)
    ).when(pl.col("__modeled")).then(pl.concat_str(pl.lit("the models do not find it unusual ("), z_text, pl.lit(")")))
    flagged_text = pl.concat_str([
        pl.when(pl.col("__fired")).then(rule_text), model_part,
    ], separator=". ", ignore_nulls=True)
    agree_z = format_value(pl.lit(float(policy["agree_z"])), "f1")
    unflagged = (
        pl.when(pl.col("__fired")).then(pl.concat_str(
            pl.lit("not flagged: rule "), rule_names, pl.lit(" fired but the models did not agree (highest model z "),
            format_value(pl.col("__max_z"), "f1"), pl.lit(" < "), agree_z, pl.lit(")"),
        ))
        .when(pl.col("__modeled")).then(pl.concat_str(
            pl.lit("not flagged: no rule fired; highest model z "), format_value(pl.col("__max_z"), "f1"),
        ))
        .otherwise(pl.lit("not flagged: no rule fired"))
    )
    return pl.when(pl.col("flagged")).then(flagged_text).otherwise(unflagged)
