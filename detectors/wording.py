"""Number formatting for plain-words reasons: feature labels, humanized numbers and reason
templates, as polars expressions so whole columns format at once (rules' reasons, the models'
evidence, run-ups and the sessions behind a flagged week)."""

from __future__ import annotations

import functools
import re
import string
from typing import Any

import polars as pl

FEATURE_LABELS: dict[str, str] = {
    "tokens": "tokens",
    "cost_usd": "cost",
    "tokens_team_z": "tokens vs team (robust z)",
    "tokens_org_z": "tokens vs org (robust z)",
    "cost_usd_team_z": "cost vs team (robust z)",
    "tokens_per_deployed_change": "tokens per deployed change",
    "tokens_per_deployed_change_team_z": "tokens per deployed change vs team (robust z)",
    "tokens_per_merged_line_company_ratio": "tokens per merged line, x the company median",
    "unshipped_token_share": "tokens with nothing deployed",
    "unshipped_cost_usd": "cost with nothing deployed",
    "near_repeat_share": "near-identical prompts",
    "exact_repeat_share": "exactly repeated prompts",
    "near_repeat_share_week": "near-identical prompts (whole week)",
    "exact_repeat_share_week": "exactly repeated prompts (whole week)",
    "longest_near_run": "longest run of near-identical prompts",
    "gap_cv": "variation of gaps between prompts",
    "median_gap_seconds": "median seconds between prompts",
    "cache_read_share": "cache-read share of tokens",
    "output_input_ratio": "output/input token ratio",
    "lines_accepted_per_ktok": "lines accepted per 1k tokens",
    "no_repo_prompt_share": "prompts without a repository",
    "requests_per_prompt": "requests per prompt",
    "tokens_per_prompt": "tokens per prompt",
    "mean_prompt_length": "mean prompt length (chars)",
    "peak_3h_token_share": "tokens in the busiest 3 hours",
    "peak_3h_token_share_team_z": "busiest-3-hours share vs team (robust z)",
    "snapshot_window_share": "tokens just before the leaderboard snapshot",
    "merged_changes": "merged changes",
    "merged_changes_team_z": "merged changes vs team (robust z)",
    "deployed_changes": "deployed changes",
    "tiny_change_share": "tiny changes",
    "deployments_per_change": "deployments per change",
    "mean_change_lines": "mean lines per change",
    "night_share": "night-time tokens",
    "weekend_share": "weekend tokens",
    "off_hours_share": "tokens outside usual hours",
    "prompts": "prompts",
    "requests": "requests",
    "sessions": "sessions",
    "deployed": "deployed",
    "active_minutes": "active minutes",
    "duration_minutes": "session minutes",
}


def feature_label(name: str) -> str:
    """Plain-words label of a feature column."""
    return FEATURE_LABELS.get(name, name.replace("_", " "))


def feature_format(name: str) -> str:
    """Default number format of a feature column, from its name."""
    if name.endswith("_z"):
        return "f1"
    if name.endswith("_share") or "_share_" in name:
        return "pct"
    if "cost" in name or "usd" in name:
        return "usd"
    return "num"


def _strip_zeros(text: pl.Expr) -> pl.Expr:
    """A float's text without trailing fraction zeros ("3.0" -> "3", "-0.0" -> "-0"). polars
    writes a float cast to text as its shortest round-trip form, whose fraction ends in a zero
    only as ".0", so stripping that suffix is the regex ``(\\.\\d*?)0+$`` without compiling two
    regular expressions per formatted column (tests/detectors/test_wording.py checks both agree)."""
    return text.str.strip_suffix(".0")


def _decimals(x: pl.Expr, decimals: int) -> pl.Expr:
    return _strip_zeros(x.round(decimals).cast(pl.String))


def fmt_num(x: pl.Expr) -> pl.Expr:
    """Compact number: 412k, 1.2M, 380, 38.4, 0.25, 0.004.

    Written as one unit, one rounding and one text per row (a chain of one formatted branch per
    magnitude would format every row seven times): from 1,000 up the value is divided by its
    unit and shown with 0 decimals from 100 up, else 1; below 1,000 (divided by 1, which is
    exact) with 0 decimals from 100, 1 from 1, 2 from 0.1, else 3."""
    x = x.cast(pl.Float64)
    ax = x.abs()
    unit = pl.when(ax >= 1e9).then(pl.lit(1e9)).when(ax >= 1e6).then(pl.lit(1e6)).when(ax >= 1e3).then(pl.lit(1e3))\
        .otherwise(pl.lit(1.0))
    suffix = pl.when(ax >= 1e9).then(pl.lit("B")).when(ax >= 1e6).then(pl.lit("M")).when(ax >= 1e3).then(pl.lit("k"))\
        .otherwise(pl.lit(""))
    m = x / unit
    am = m.abs()
    rounded = (
        pl.when(am >= 100).then(m.round(0))
        .when(am >= 1).then(m.round(1))
        .when(am >= 0.1).then(m.round(2))
        .otherwise(m.round(3))
    )
    return pl.concat_str(_strip_zeros(rounded.cast(pl.String)), suffix)


def fmt_pct(x: pl.Expr) -> pl.Expr:
    """Share as percent: 71%, 4.5%."""
    p = x.cast(pl.Float64) * 100
    return pl.concat_str(pl.when(p.abs() >= 10).then(_decimals(p, 0)).otherwise(_decimals(p, 1)), pl.lit("%"))


def fmt_usd(x: pl.Expr) -> pl.Expr:
    """Dollars: $38.40 under $1,000, then $1.2k, $3.4M."""
    x = x.cast(pl.Float64)
    cents = (x.abs() * 100).round(0).cast(pl.Int64)
    small = pl.concat_str(
        pl.when(x < 0).then(pl.lit("-$")).otherwise(pl.lit("$")),
        (cents // 100).cast(pl.String),
        pl.lit("."),
        (cents % 100).cast(pl.String).str.zfill(2),
    )
    big = pl.concat_str(pl.when(x < 0).then(pl.lit("-$")).otherwise(pl.lit("$")), fmt_num(x.abs()))
    return pl.when(x.abs() < 999.995).then(small).otherwise(big)


def fmt_int(x: pl.Expr) -> pl.Expr:
    """Rounded integer."""
    return x.cast(pl.Float64).round(0).cast(pl.Int64).cast(pl.String)


FORMATTERS: dict[str, Any] = {
    "num": fmt_num,
    "tok": fmt_num,
    "pct": fmt_pct,
    "usd": fmt_usd,
    "int": fmt_int,
    "f0": lambda x: _decimals(x.cast(pl.Float64), 0),
    "f1": lambda x: _decimals(x.cast(pl.Float64), 1),
    "f2": lambda x: _decimals(x.cast(pl.Float64), 2),
}


def format_value(x: pl.Expr, fmt: str = "num") -> pl.Expr:
    """Humanized text of a numeric or boolean expression (a text one as it is: ``text``); null, NaN: 'n/a'."""
    if fmt in ("text", "bool"):
        yes_no = pl.when(x.cast(pl.Boolean)).then(pl.lit("yes")).otherwise(pl.lit("no"))
        return pl.when(is_shown(x, fmt)).then(x.cast(pl.String) if fmt == "text" else yes_no).otherwise(pl.lit("n/a"))
    if fmt not in FORMATTERS:
        raise ValueError(f"unknown number format {fmt!r}; known: {sorted(FORMATTERS)}, 'bool' and 'text'")
    return pl.when(is_shown(x, fmt)).then(FORMATTERS[fmt](x.cast(pl.Float64))).otherwise(pl.lit("n/a"))


def is_shown(x: pl.Expr, fmt: str = "num") -> pl.Expr:
    """Whether ``format_value`` shows the value (not null; for a number, finite) rather than 'n/a'."""
    return x.is_not_null() if fmt in ("text", "bool") else x.cast(pl.Float64).is_finite().fill_null(False)


def humanize(value: float | None, fmt: str = "num") -> str:
    """Humanize one number (the same formatting as ``format_value``)."""
    return pl.select(format_value(pl.lit(value, dtype=pl.Float64), fmt)).item()


def format_by_feature(feature: pl.Expr, value: pl.Expr) -> pl.Expr:
    """Format ``value`` by the format its feature name implies (long evidence frames)."""
    is_z = feature.str.ends_with("_z")
    is_pct = ~is_z & (feature.str.ends_with("_share") | feature.str.contains("_share_"))
    is_usd = ~is_z & (feature.str.contains("cost") | feature.str.contains("usd"))
    return (
        pl.when(is_z).then(format_value(value, "f1"))
        .when(is_pct).then(format_value(value, "pct"))
        .when(is_usd).then(format_value(value, "usd"))
        .otherwise(format_value(value, "num"))
    )


def label_expr(feature: pl.Expr) -> pl.Expr:
    """Plain-words label of a feature-name column."""
    return feature.replace_strict(FEATURE_LABELS, default=feature.str.replace_all("_", " "), return_dtype=pl.String)


# --- reason templates ---------------------------------------------------------------

def template_columns(template: str) -> list[str]:
    """The column names a reason template reads ({column} or {column:fmt})."""
    return [name for name, _ in _placeholders(template)]


@functools.lru_cache(maxsize=1024)
def reason_expr(reason: str) -> pl.Expr:
    """The template rendered: each `{column:fmt}` humanized ('n/a' for a null), and each optional
    segment `[text]` or `[text|otherwise]` rendered as its text when every value in it is known,
    else as `otherwise` (or nothing): a value a source cannot tell is said in words, not as 'n/a'."""
    parts = OPTIONAL_SEGMENT.split(reason)  # text, a segment's text, its alternative (or None), text, ...
    pieces = _template_pieces(parts[0])
    for text, otherwise, after in zip(parts[1::3], parts[2::3], parts[3::3]):
        shown = [is_shown(pl.col(name), fmt) for name, fmt in _placeholders(text)]
        pieces.append(pl.when(pl.all_horizontal(shown or [pl.lit(True)])).then(_concat(_template_pieces(text)))
                      .otherwise(_concat(_template_pieces(otherwise or ""))))
        pieces += _template_pieces(after)
    return _concat(pieces)


def _placeholders(template: str) -> list[tuple[str, str]]:
    """(column, format) of each placeholder, the format implied by the column's name when not given."""
    return [(name, _format_of(name, spec)) for _, name, spec, _ in string.Formatter().parse(template) if name]


def _template_pieces(template: str) -> list[pl.Expr]:
    pieces: list[pl.Expr] = []
    for literal, name, spec, _ in string.Formatter().parse(template):
        if literal:
            pieces.append(pl.lit(literal))
        if name:
            pieces.append(format_value(pl.col(name), _format_of(name, spec)))
    return pieces


def _format_of(name: str, spec: str | None) -> str:
    """A placeholder's format: the one it gives, else the one its column's name implies."""
    return spec or feature_format(name)


def _concat(pieces: list[pl.Expr]) -> pl.Expr:
    return pl.concat_str(pieces) if pieces else pl.lit("")


OPTIONAL_SEGMENT = re.compile(r"\[([^\[\]|]*)(?:\|([^\[\]]*))?\]")
"""`[text]` or `[text|otherwise]` in a reason template (see reason_expr)."""
