"""Threshold rules from the TOML config, each with a plain-words reason and a wasted-cost
expression.

A rule fires on a row when all its ``conditions`` hold and, if it has ``any_conditions``,
at least one of those holds. A comparison with a null value does not hold.

Rule strength (the row's score from that rule), in [0, weight]::

    strength = weight * (floor + (1 - floor) * mean_c past_c)

where ``past_c`` in [0, 1] says how far past its threshold the row is on condition c:
``(value - threshold) / scale`` for ``>``/``>=`` (mirrored for ``<``/``<=``), clipped to
[0, 1]; ``scale`` defaults to ``|threshold|`` (1 when the threshold is 0), so by default a
row at twice a ``>=`` threshold, or at 0 under a ``<=`` threshold, is fully past.
Equality and null tests count as fully past. A condition marked ``gate = true`` says who
the rule applies to (someone who merges work at all), not how far the row is from normal: it
must hold, and it is left out of the mean (a rule of gates only is fully past). The satisfied
``any_conditions`` count as one condition (their best ``past_c``). A row just at the thresholds gets
``weight * floor``; far past all of them, ``weight``. The detector's score is the
strongest fired rule's strength (0 when none fires).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import polars as pl

from detectors.base import EVIDENCE_SCHEMA, BaseDetector, as_rows, empty_evidence
from detectors.wording import feature_format, feature_label, format_value, reason_expr, template_columns

LEVELS = ("user_week", "session")
COMPARISONS = (">=", "<=", "==", "!=", ">", "<")
NULL_TESTS = ("is_null", "not_null")
_CONDITION_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")
_NULL_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+is\s+(not\s+)?null\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Condition:
    """``feature op threshold``; ``scale`` is the distance past the threshold that counts as fully
    past; a ``gate`` must hold but does not grade the rule's strength. A comparison with a null
    value does not hold, unless ``unknown_holds``: then an unknown value lets the rule fire, at the
    threshold (it adds no strength), for a condition the rule's other evidence stands in for."""

    feature: str
    op: str
    threshold: float | bool | None = None
    scale: float | None = None
    gate: bool = False
    unknown_holds: bool = False

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any]) -> Condition:
        """From a table ``{feature, op, threshold, scale}`` or a string ``"tokens_team_z >= 3"``."""
        if isinstance(spec, str):
            m = _NULL_RE.match(spec)
            if m:
                return cls(m.group(1), "not_null" if m.group(2) else "is_null")
            m = _CONDITION_RE.match(spec)
            if not m:
                raise ValueError(f"cannot parse condition {spec!r}; write e.g. 'near_repeat_share >= 0.5'")
            raw = m.group(3).lower()
            threshold: float | bool = {"true": True, "false": False}.get(raw, None)  # type: ignore[assignment]
            if threshold is None:
                threshold = float(raw)
            return cls(m.group(1), m.group(2), threshold)
        op = str(spec["op"])
        if op not in COMPARISONS + NULL_TESTS:
            raise ValueError(f"unknown op {op!r} in condition {dict(spec)}")
        threshold = spec.get("threshold")
        if op in COMPARISONS and threshold is None:
            raise ValueError(f"condition {dict(spec)} needs a threshold")
        if isinstance(threshold, int) and not isinstance(threshold, bool):
            threshold = float(threshold)
        scale = spec.get("scale")
        return cls(str(spec["feature"]), op, threshold, None if scale is None else float(scale),
                   bool(spec.get("gate", False)), bool(spec.get("unknown_holds", False)))

    @property
    def is_graded(self) -> bool:
        return self.op in (">", ">=", "<", "<=") and not isinstance(self.threshold, bool)

    def holds(self) -> pl.Expr:
        col = pl.col(self.feature)
        if self.op == "is_null":
            return col.is_null()
        if self.op == "not_null":
            return col.is_not_null()
        t = self.threshold
        value = col if isinstance(t, bool) else col.cast(pl.Float64)
        expr = {
            ">=": value >= t, "<=": value <= t, ">": value > t, "<": value < t, "==": value == t, "!=": value != t,
        }[self.op]
        return expr.fill_null(self.unknown_holds)

    def past(self) -> pl.Expr:
        """How far past the threshold, in [0, 1] (1 for equality and null tests)."""
        if not self.is_graded:
            return pl.lit(1.0)
        t = float(self.threshold)  # type: ignore[arg-type]
        scale = self.scale if self.scale else (abs(t) if t != 0 else 1.0)
        value = pl.col(self.feature).cast(pl.Float64)
        distance = value - t if self.op in (">", ">=") else t - value
        return (distance / scale).clip(0.0, 1.0).fill_null(0.0).fill_nan(0.0)

    def closeness(self) -> pl.Expr:
        """How near the row comes to the condition, in [0, 1]: 1 when it holds; for a comparison
        that does not hold, 1 minus the distance short of the threshold over its reach, the smaller
        of the scale and the threshold's size (0 from a whole reach short: a row with none of a
        share, `share >= 0.1` of scale 0.4, is not near it); 0 for any other test that does not
        hold, or a null value."""
        if not self.is_graded:
            return self.holds().cast(pl.Float64)
        t = float(self.threshold)  # type: ignore[arg-type]
        scale = self.scale if self.scale else (abs(t) if t != 0 else 1.0)
        reach = min(scale, abs(t)) if t != 0 else scale
        value = pl.col(self.feature).cast(pl.Float64)
        short = t - value if self.op in (">", ">=") else value - t
        return pl.when(self.holds()).then(1.0).otherwise((1 - short / reach).clip(0.0, 1.0))\
            .fill_null(0.0).fill_nan(0.0)

    def value_text(self) -> pl.Expr:
        """The row's value of the feature, humanized ('yes'/'no' for booleans, 'n/a' for null)."""
        if isinstance(self.threshold, bool):
            return format_value(pl.col(self.feature), "bool")
        if self.op in NULL_TESTS:
            return pl.when(pl.col(self.feature).is_null()).then(pl.lit("n/a")).otherwise(pl.lit("present"))
        return format_value(pl.col(self.feature), feature_format(self.feature))

    def describe(self) -> str:
        if self.op in NULL_TESTS:
            return f"{self.feature} {self.op.replace('_', ' ')}"
        t = self.threshold
        shown = str(t).lower() if isinstance(t, bool) else f"{t:g}"
        return f"{self.feature} {self.op} {shown}" + (" (or unknown)" if self.unknown_holds else "")


@dataclass(frozen=True, kw_only=True)
class RowSelection:
    """Rows a rule selects beyond its own: ``conditions`` over their columns (all must hold), a
    ``reason`` template over them (default: the conditions in words) and a ``wasted_cost``
    expression."""

    conditions: tuple[Condition, ...]
    reason: str = ""
    wasted_cost: str = "0"

    def selected(self) -> pl.Expr:
        return pl.all_horizontal([c.holds() for c in self.conditions]) if self.conditions else pl.lit(True)

    def reason_expr(self) -> pl.Expr:
        return reason_expr(self.reason or " and ".join(c.describe() for c in self.conditions))

    def wasted_expr(self) -> pl.Expr:
        return _wasted_expr(self.wasted_cost)


@dataclass(frozen=True, kw_only=True)
class WeekSessions(RowSelection):
    """Which sessions of a week a user-week rule flagged make up the waste it prices (a rule's
    ``sessions`` table): session conditions, a reason, and the session's ``wasted_cost`` (default
    its whole cost)."""

    wasted_cost: str = "cost_usd"

    @classmethod
    def parse(cls, rule: str, spec: Mapping[str, Any]) -> WeekSessions:
        conditions = tuple(Condition.parse(c) for c in spec.get("conditions", ()))
        if not conditions:
            raise ValueError(f"rule {rule}: sessions needs conditions")
        return cls(conditions=conditions, reason=str(spec.get("reason", "")),
                   wasted_cost=str(spec.get("wasted_cost", "cost_usd")))

    @property
    def columns(self) -> set[str]:
        """The session columns selecting, ranking and explaining the sessions read."""
        return {"user_id", "week_start", "tokens", *(c.feature for c in self.conditions), *template_columns(self.reason)}

    def missing_columns(self, rule: str, columns: Collection[str]) -> str | None:
        """What is wrong when the session features (``columns``) lack a column it reads; else None."""
        missing = sorted(self.columns - set(columns))
        return f"rule {rule}: its sessions use columns the session features lack: {missing}" if missing else None


@dataclass(frozen=True, kw_only=True)
class RunUp(RowSelection):
    """The weeks that rose into a week a user-week rule flagged (a rule's ``run_up`` table;
    ``detectors.run_up``): a week joins, walking back at most ``weeks`` weeks, while its ``rising``
    value (SQL over its columns, named ``rising_label`` in reasons) is below the next week's and at
    least 1 / ``max_growth`` of it, and its conditions hold (none: every week)."""

    rising: str
    rising_label: str
    weeks: int = 3
    max_growth: float = 3.0

    @classmethod
    def parse(cls, rule: str, spec: Mapping[str, Any]) -> RunUp:
        conditions = tuple(Condition.parse(c) for c in spec.get("conditions", ()))
        if "rising" not in spec:
            raise ValueError(f"rule {rule}: run_up needs rising (an expression over the week's columns)")
        weeks, growth = int(spec.get("weeks", 3)), float(spec.get("max_growth", 3.0))
        if weeks < 1 or growth <= 1.0:
            raise ValueError(f"rule {rule}: run_up needs weeks >= 1 and max_growth > 1")
        return cls(conditions=conditions, reason=str(spec.get("reason", "")),
                   wasted_cost=str(spec.get("wasted_cost", "0")), rising=str(spec["rising"]),
                   rising_label=str(spec.get("rising_label", spec["rising"])), weeks=weeks, max_growth=growth)

    @property
    def columns(self) -> set[str]:
        """The user-week columns it reads."""
        return {*(c.feature for c in self.conditions), *template_columns(self.reason),
                *_expression_columns(self.rising), *_expression_columns(self.wasted_cost), "cost_usd"}

    def rising_expr(self) -> pl.Expr:
        return pl.sql_expr(self.rising).cast(pl.Float64)


def _expression_columns(expression: str) -> list[str]:
    """The columns an SQL expression over a row reads."""
    return pl.sql_expr(expression).meta.root_names()


@dataclass(frozen=True)
class Rule:
    """One configured rule."""

    name: str
    level: str
    weight: float
    conditions: tuple[Condition, ...]
    any_conditions: tuple[Condition, ...] = ()
    description: str = ""
    wasted_cost: str = "0"
    reason: str = ""
    enabled: bool = True
    sessions: WeekSessions | None = None
    run_up: RunUp | None = None
    columns: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> Rule:
        name = str(spec["name"])
        level = str(spec["level"])
        if level not in LEVELS:
            raise ValueError(f"rule {name}: level must be one of {LEVELS}, not {level!r}")
        weight = float(spec.get("weight", 1.0))
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"rule {name}: weight must be in (0, 1]")
        conditions = tuple(Condition.parse(c) for c in spec.get("conditions", ()))
        if not conditions:
            raise ValueError(f"rule {name} has no conditions")
        any_conditions = tuple(Condition.parse(c) for c in spec.get("any_conditions", ()))
        reason = str(spec.get("reason", "")) or str(spec.get("description", name))
        columns = tuple(dict.fromkeys([c.feature for c in conditions + any_conditions] + template_columns(reason)))
        sessions, run_up = spec.get("sessions"), spec.get("run_up")
        if (sessions is not None or run_up is not None) and level != "user_week":
            raise ValueError(f"rule {name}: only a user_week rule names its sessions or its run-up")
        return cls(
            name=name, level=level, weight=weight, conditions=conditions, any_conditions=any_conditions,
            description=str(spec.get("description", "")), wasted_cost=str(spec.get("wasted_cost", "0")),
            reason=reason, enabled=bool(spec.get("enabled", True)),
            sessions=None if sessions is None else WeekSessions.parse(name, sessions),
            run_up=None if run_up is None else RunUp.parse(name, run_up), columns=columns,
        )

    @property
    def graded_conditions(self) -> tuple[Condition, ...]:
        """The conditions that grade the strength (all but the gates)."""
        return tuple(c for c in self.conditions if not c.gate)

    def parts(self) -> list[tuple[Condition, bool, float]]:
        """Each condition, whether it is one of the ``any_conditions``, and its share of the weight
        (what ``explain`` reports): the graded conditions and the any-group split the weight evenly,
        as in the strength's mean; a gate's share is 0, unless the rule has only gates."""
        graded = len(self.graded_conditions) + (1 if self.any_conditions else 0)
        share = self.weight / (graded or len(self.conditions))
        return ([(c, False, 0.0 if c.gate and graded else share) for c in self.conditions]
                + [(c, True, share) for c in self.any_conditions])

    def fired(self) -> pl.Expr:
        expr = pl.all_horizontal([c.holds() for c in self.conditions])
        if self.any_conditions:
            expr = expr & pl.any_horizontal([c.holds() for c in self.any_conditions])
        return expr

    def _any_past(self) -> pl.Expr:
        return pl.max_horizontal([pl.when(c.holds()).then(c.past()).otherwise(0.0) for c in self.any_conditions])

    def strength(self, floor: float) -> pl.Expr:
        return _strength_expr(self, float(floor))

    def near_miss(self, floor: float, share: float) -> pl.Expr:
        """0 where the rule fires; elsewhere ``weight * floor * share * closeness``, closeness being
        the product of its conditions' (the any-group counts by its nearest): a row that came close
        ranks above one that did not, and below any row the rule fired on (``share`` < 1)."""
        closeness = pl.lit(1.0)
        for c in self.conditions:
            closeness = closeness * c.closeness()
        if self.any_conditions:
            closeness = closeness * pl.max_horizontal([c.closeness() for c in self.any_conditions])
        return pl.when(self.fired()).then(0.0).otherwise(self.weight * floor * share * closeness)

    def _strength(self, floor: float) -> pl.Expr:
        parts = [c.past() for c in self.graded_conditions]
        if self.any_conditions:
            parts.append(self._any_past())
        mean_past = pl.sum_horizontal(parts) / len(parts) if parts else pl.lit(1.0)
        return pl.when(self.fired()).then(self.weight * (floor + (1 - floor) * mean_past)).otherwise(0.0)

    def reason_expr(self) -> pl.Expr:
        """The reason template rendered for every row (humanized numbers; 'n/a' for nulls)."""
        return reason_expr(self.reason)

    def wasted_expr(self) -> pl.Expr:
        """The rule's wasted-cost expression (SQL syntax over the row's columns), null -> 0."""
        return _wasted_expr(self.wasted_cost)


# A rule's expressions are built once per process, not once per week scored: polars expressions
# are immutable, and formatted reasons are large trees.
@functools.lru_cache(maxsize=1024)
def _strength_expr(rule: Rule, floor: float) -> pl.Expr:
    return rule._strength(floor)


@functools.lru_cache(maxsize=1024)
def _wasted_expr(wasted_cost: str) -> pl.Expr:
    return pl.sql_expr(wasted_cost).cast(pl.Float64).fill_null(0.0).fill_nan(0.0)


def parse_rules(specs: Sequence[Mapping[str, Any]], level: str) -> list[Rule]:
    """The enabled rules of one level, in config order; names must be unique per level."""
    rules = [Rule.parse(s) for s in specs]
    rules = [r for r in rules if r.level == level and r.enabled]
    names = [r.name for r in rules]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"duplicate rule names at level {level}: {duplicated}")
    return rules


_CHECKED: dict[tuple[Any, ...], tuple[str, ...]] = {}
"""Problems found by ``RuleDetector.fit`` per (rules, floor, table schema)."""


class RuleDetector(BaseDetector):
    """Scores rows by the configured rules of one level (see the module docstring)."""

    detector_name = "rules"

    def __init__(self, rules: Sequence[Mapping[str, Any]] = (), level: str = "user_week",
                 floor: float = 0.5) -> None:
        self.rules = rules
        self.level = level
        self.floor = floor

    def fit(self, X: pl.DataFrame) -> Self:
        """Parse the level's rules and check the table has every column they use."""
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {self.level!r}")
        if not 0.0 <= self.floor <= 1.0:
            raise ValueError("floor must be in [0, 1]")
        rules = parse_rules(self.rules, self.level)
        problems = []
        runnable = []
        for rule in rules:
            missing = sorted(set(rule.columns) - set(X.columns))
            if missing:
                problems.append(f"{rule.name}: {missing}")
            else:
                runnable.append(rule)

        def check(checked: list[Rule]) -> None:
            X.head(0).select([e for i, r in enumerate(checked) for e in (
                r.wasted_expr().alias(f"w{i}"), r.strength(self.floor).alias(f"s{i}"), r.reason_expr().alias(f"r{i}"))])

        # the same rules on a table of the same columns were checked already (the previous week)
        key = (tuple(runnable), float(self.floor), tuple(X.schema.items()))
        if key in _CHECKED:
            problems.extend(_CHECKED[key])
        else:
            found = []
            try:  # every rule in one pass; rule by rule only to name the ones that fail
                check(runnable)
            except Exception:  # polars raises several types for a bad expression
                for rule in runnable:
                    try:
                        check([rule])
                    except Exception as exc:
                        found.append(f"{rule.name}: {exc}")
            if len(_CHECKED) >= 256:
                _CHECKED.clear()
            _CHECKED[key] = tuple(found)
            problems.extend(found)
        if problems:
            raise ValueError("rules cannot run on this table: " + "; ".join(problems))
        self.rules_ = rules
        self.rule_names_ = [r.name for r in rules]
        self.feature_names_in_ = np.asarray(sorted({c for r in rules for c in r.columns}), dtype=object)
        return self

    def strengths(self, X: pl.DataFrame) -> pl.DataFrame:
        """One column per rule: its strength on each row (0.0 when it does not fire)."""
        self._check_fitted()
        return X.select([r.strength(self.floor).alias(r.name) for r in self.rules_])

    def near_misses(self, X: pl.DataFrame, share: float) -> pl.DataFrame:
        """One column per rule: how near each row came to it where it did not fire (``Rule.near_miss``)."""
        self._check_fitted()
        return X.select([r.near_miss(self.floor, share).alias(r.name) for r in self.rules_])

    def decision_function(self, X: pl.DataFrame) -> np.ndarray:
        self._check_fitted()
        if not self.rules_:
            return np.zeros(X.height, dtype=np.float64)
        return X.select(pl.max_horizontal([r.strength(self.floor) for r in self.rules_])).to_series().to_numpy()\
            .astype(np.float64)

    def explain(
        self, X: pl.DataFrame, rows: Sequence[int] | np.ndarray | None = None, top_k: int = 3
    ) -> pl.DataFrame:
        """One evidence row per condition of each fired rule (``top_k`` is not used: every
        condition is needed for a rule to fire). ``baseline`` is the threshold;
        ``contribution`` is the condition's part of the rule strength (they sum to it when
        at most one of the ``any_conditions`` holds; each that holds reports the group's part)."""
        self._check_fitted()
        idx = as_rows(rows, X.height)
        if idx.size == 0 or not self.rules_:
            return empty_evidence()
        # one lazy query for every rule's conditions: polars runs the parts together, not one
        # small eager query each
        sub = X[idx].with_columns(pl.Series("__row", idx, dtype=pl.Int64)).lazy()
        frames = []
        for rule in self.rules_:
            fired = sub.filter(rule.fired())
            for cond, in_any, share in rule.parts():
                part = fired.filter(cond.holds()) if in_any else fired
                threshold = cond.threshold
                frames.append(part.select(
                    pl.col("__row").alias("row"),
                    pl.lit(f"rule:{rule.name}").alias("detector"),
                    pl.lit(cond.feature).alias("feature"),
                    pl.col(cond.feature).cast(pl.Float64).alias("value"),
                    pl.lit(None if threshold is None else float(threshold), dtype=pl.Float64).alias("baseline"),
                    # satisfied any-conditions each report the any-group's full share
                    (share * (self.floor + (1 - self.floor) * (pl.lit(1.0) if cond.gate else cond.past())))
                    .alias("contribution"),
                    pl.concat_str(
                        pl.lit(feature_label(cond.feature) + " "), cond.value_text(),
                        pl.lit(f" (rule {rule.name}: {cond.describe()})"),
                    ).alias("text"),
                ))
        if not frames:
            return empty_evidence()
        return pl.concat([f.cast(EVIDENCE_SCHEMA) for f in frames]).sort(["row"], maintain_order=True).collect()
