"""The finance report's numbers reconcile, and its FOCUS export follows the FinOps FOCUS specification.

On a generated world run through the pipeline (rules only, ~3 s) that has requests with no price and flags that
waste no compute (deployment splitting), and on the hand-built database of test_report.py.

The column lists below were read from the specification, not recalled:

- FOCUS 1.2: FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec at tag v1.2 (commit
  7296e3146fb931ee32b6496fa6e4200e7f4384f7), specification/columns/*.md: each column's "Column ID" and the
  "Feature level" (Mandatory / Conditional / Recommended) and "Allows nulls" of its content constraints. The same
  presence rules are in FinOps' validator model finopsfoundation/focus_validator,
  focus_validator/rules/model-1.2.json (CostAndUsage-D-003 ... D-068).
- FOCUS 1.3: the 1.3 requirements model, FinOps-Open-Cost-and-Usage-Spec/focus_extraction_test,
  specification/requirements_model/releases/1.3/model_rules/datasets/cost_and_usage/costandusage.json: adds
  HostProviderName (CAU-CostAndUsage-D-075-M) and ServiceProviderName (D-076-M) as MUST be present, keeps
  ProviderName (D-038-M) and PublisherName (D-021-M) as MUST be present (deprecated in 1.3, replaced by
  ServiceProviderName; FOCUS_Spec specification/datasets/cost_and_usage/columns/providername.md,
  publishername.md), and makes PricingQuantity and ConsumedQuantity null when SkuPriceId is null
  (CAU-PricingQuantity-C-011-C, CAU-ConsumedQuantity-C-009-C), so a Usage row needs a SkuPriceId.
"""
from __future__ import annotations

import csv
import datetime
import html
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from pipeline.publish.report import PEOPLE_FILE, write_report
from tests.pipeline.publish.test_report import WASTE, build_db, rules_only_run, standard_requests

# FOCUS 1.2, specification/columns/*.md at tag v1.2: every Column ID (57)
FOCUS_1_2_COLUMNS = {
    "AvailabilityZone", "BilledCost", "BillingAccountId", "BillingAccountName", "BillingAccountType", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "CapacityReservationId", "CapacityReservationStatus", "ChargeCategory",
    "ChargeClass", "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "CommitmentDiscountCategory", "CommitmentDiscountId", "CommitmentDiscountName", "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus", "CommitmentDiscountType", "CommitmentDiscountUnit", "ConsumedQuantity", "ConsumedUnit",
    "ContractedCost", "ContractedUnitPrice", "EffectiveCost", "InvoiceId", "InvoiceIssuerName", "ListCost",
    "ListUnitPrice", "PricingCategory", "PricingCurrency", "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost", "PricingCurrencyListUnitPrice", "PricingQuantity", "PricingUnit", "ProviderName",
    "PublisherName", "RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType", "ServiceCategory",
    "ServiceName", "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId", "SubAccountId",
    "SubAccountName", "SubAccountType", "Tags",
}
# FOCUS 1.2, "Feature level: Mandatory" (21; model-1.2.json rules CostAndUsage-D-0xx-M)
FOCUS_1_2_MANDATORY = {
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
    "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
    "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
    "ServiceCategory", "ServiceName",
}
# FOCUS 1.3 columns of the Cost and Usage dataset that 1.2 has not (1.3 model_rules/.../cost_and_usage/columns/)
FOCUS_1_3_NEW_COLUMNS = {
    "AllocatedMethodDetails", "AllocatedMethodId", "AllocatedResourceId", "AllocatedResourceName", "AllocatedTags",
    "ContractApplied", "HostProviderName", "ServiceProviderName",
}
# FOCUS 1.3, MUST be present unconditionally: 1.2's mandatory columns plus these two
FOCUS_1_3_MANDATORY = FOCUS_1_2_MANDATORY | {"HostProviderName", "ServiceProviderName"}

# the conditional and recommended columns the export carries, and the condition (applicability criterion) it meets
CONDITIONAL_INCLUDED = {
    "SubAccountId": "SUB_ACCOUNT_SUPPORTED (teams)", "SubAccountName": "SUB_ACCOUNT_SUPPORTED (teams)",
    "ConsumedQuantity": "USAGE_MEASUREMENT_SUPPORTED (tokens)", "ConsumedUnit": "USAGE_MEASUREMENT_SUPPORTED (tokens)",
    "Tags": "TAGGING_SUPPORTED", "SkuId": "1.3: SkuPriceId needed, SkuId is its parent",
    "SkuPriceId": "1.3: PricingQuantity of a Usage row needs it", "SkuMeter": "SHOULD NOT be null when SkuId is not",
    "ChargeFrequency": "Recommended", "ServiceSubcategory": "Recommended",
}

# 1.2 "Allows nulls: True" among the columns the export has (HostProviderName: 1.3, null only for charges with no
# host, e.g. taxes)
NULLABLE = {
    "BillingAccountName", "ChargeClass", "ChargeDescription", "ConsumedQuantity", "ConsumedUnit", "PricingQuantity",
    "PricingUnit", "SkuId", "SkuMeter", "SkuPriceId", "SubAccountId", "SubAccountName", "Tags",
}
# a column that may only be set (present, and not null) when another is: (dependent, required)
REQUIRES = [
    ("ResourceName", "ResourceId"), ("ResourceType", "ResourceId"), ("SubAccountName", "SubAccountId"),
    ("SubAccountType", "SubAccountId"), ("ConsumedUnit", "ConsumedQuantity"), ("PricingUnit", "PricingQuantity"),
    ("SkuMeter", "SkuId"), ("SkuPriceDetails", "SkuPriceId"), ("SkuPriceId", "SkuId"), ("PricingQuantity", "SkuPriceId"),
    ("ConsumedQuantity", "SkuPriceId"), ("CommitmentDiscountName", "CommitmentDiscountId"),
    ("CommitmentDiscountStatus", "CommitmentDiscountId"), ("CapacityReservationStatus", "CapacityReservationId"),
    ("AllocatedResourceName", "AllocatedResourceId"),
]

CHARGE_CATEGORIES = {"Usage", "Purchase", "Tax", "Credit", "Adjustment"}
CHARGE_FREQUENCIES = {"One-Time", "Recurring", "Usage-Based"}
SERVICE_CATEGORIES = {
    "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases", "Developer Tools",
    "Multicloud", "Identity", "Integration", "Internet of Things", "Management and Governance", "Media", "Migration",
    "Mobile", "Networking", "Security", "Storage", "Web", "Other",
}
AI_SUBCATEGORIES = {
    "AI Platforms", "Bots", "Generative AI", "Machine Learning", "Natural Language Processing",
    "Other (AI and Machine Learning)",
}
COST_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")
NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")  # NumericFormat: no sign for positives, no commas, no units
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")  # DateTimeFormat: ISO 8601, UTC, 'Z'


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def header(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        return next(csv.reader(f))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A generated world (40 people, 3 weeks) scored by the rules alone, and its report with every team named."""
    root = tmp_path_factory.mktemp("world")
    db = rules_only_run(root, users=40, weeks=3, seed=7)
    out = root / "report"
    write_report(db, out, min_team_size=1, include_people=True)
    return {"db": db, "out": out}


@pytest.fixture(scope="module")
def hand_built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """test_report.py's database plus a request with no price and a user-week with no request."""
    root = tmp_path_factory.mktemp("hand")
    requests = standard_requests() + [("usr-a3", "2026-09-15 12:00:00", "mystery-model", 700, 300, None)]
    db = build_db(root / "g.duckdb", requests, WASTE, extra_user_weeks=[("usr-b5", datetime.date(2026, 9, 28), 2.0, 0.5)])
    out = root / "report"
    write_report(db, out, include_people=True)
    return {"db": db, "out": out}


@pytest.fixture(params=["world", "hand_built"])
def report(request: pytest.FixtureRequest) -> dict:
    return request.getfixturevalue(request.param)


# ------------------------------------------------------------------------------------------------ FOCUS columns

def test_focus_header_has_every_mandatory_column_named_as_the_spec(report: dict) -> None:
    columns = header(report["out"] / "focus_wasted_cost.csv")
    assert len(columns) == len(set(columns))
    assert FOCUS_1_2_MANDATORY <= set(columns), FOCUS_1_2_MANDATORY - set(columns)
    assert FOCUS_1_3_MANDATORY <= set(columns), FOCUS_1_3_MANDATORY - set(columns)
    assert set(CONDITIONAL_INCLUDED) <= set(columns)


def test_focus_has_no_column_outside_the_spec_and_no_forbidden_combination(report: dict) -> None:
    columns = header(report["out"] / "focus_wasted_cost.csv")
    focus = [c for c in columns if not c.startswith("x_")]
    custom = [c for c in columns if c.startswith("x_")]
    assert set(focus) <= FOCUS_1_2_COLUMNS | FOCUS_1_3_NEW_COLUMNS, set(focus) - FOCUS_1_2_COLUMNS - FOCUS_1_3_NEW_COLUMNS
    # ColumnHandling: custom columns carry the x_ prefix, are alphanumeric Pascal case, and come after FOCUS's
    assert columns == focus + custom
    assert custom and all(re.fullmatch(r"x_[A-Z][A-Za-z0-9]*", c) for c in custom), custom
    assert focus == sorted(focus)
    for dependent, required in REQUIRES:
        if dependent in columns:
            assert required in columns, f"{dependent} without {required}"
    for row in read_csv(report["out"] / "focus_wasted_cost.csv"):
        for dependent, required in REQUIRES:
            if row.get(dependent):
                assert row[required], f"{dependent} set, {required} null"


def test_focus_values_follow_the_spec_rules(report: dict) -> None:
    rows = read_csv(report["out"] / "focus_wasted_cost.csv")
    assert rows
    for row in rows:
        for column, value in row.items():
            if column not in NULLABLE and not column.startswith("x_"):
                assert value.strip(), f"{column} is null or blank"  # not nullable; StringHandling: no blank strings
        assert row["ChargeCategory"] in CHARGE_CATEGORIES
        assert row["ChargeClass"] in {"", "Correction"}
        assert row["ChargeFrequency"] in CHARGE_FREQUENCIES
        assert not (row["ChargeCategory"] == "Purchase" and row["ChargeFrequency"] == "Usage-Based")
        assert row["ServiceCategory"] in SERVICE_CATEGORIES
        assert row["ServiceCategory"] == "AI and Machine Learning" and row["ServiceSubcategory"] in AI_SUBCATEGORIES
        assert re.fullmatch(r"[A-Z]{3}", row["BillingCurrency"]) and row["BillingCurrency"] == "USD"  # ISO 4217
        # dates: ISO 8601 UTC instants; billing period holds the charge period
        instants = {c: row[c] for c in ("BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd")}
        assert all(INSTANT.fullmatch(v) for v in instants.values()), instants
        t = {c: datetime.datetime.fromisoformat(v) for c, v in instants.items()}
        assert t["BillingPeriodStart"] <= t["ChargePeriodStart"] < t["ChargePeriodEnd"] <= t["BillingPeriodEnd"]
        assert t["ChargePeriodStart"].weekday() == 0 and t["ChargePeriodEnd"] - t["ChargePeriodStart"] == datetime.timedelta(days=7)
        # costs: non-negative decimals in the billing currency; no discounts, so all four are the same
        for column in COST_COLUMNS + ("ConsumedQuantity", "PricingQuantity", "x_TotalCost", "x_TotalTokens", "x_UnpricedTokens"):
            assert NUMERIC.fullmatch(row[column]) and Decimal(row[column]) >= 0, (column, row[column])
        assert len({row[c] for c in COST_COLUMNS}) == 1
        # a Usage row that is no correction has its quantities, units and SKU (1.2 and 1.3 nullability rules)
        if row["ChargeCategory"] == "Usage" and row["ChargeClass"] != "Correction":
            for column in ("PricingQuantity", "PricingUnit", "ConsumedQuantity", "ConsumedUnit", "SkuId", "SkuPriceId"):
                assert row[column], column
        assert row["ConsumedUnit"] == row["PricingUnit"] == "Tokens"  # UnitFormat: a count-based unit, plural
        # the entities: one vendor; 1.3 HostProviderName equals ServiceProviderName when the host is not exposed;
        # 1.2 BilledCost-C-005: a charge paid to a third party (provider is not the issuer) bills 0
        assert row["HostProviderName"] == row["ServiceProviderName"] == row["ProviderName"] == row["PublisherName"]
        assert row["ProviderName"] == row["InvoiceIssuerName"] or Decimal(row["BilledCost"]) == 0
        assert (row["SubAccountName"] == "") == (row["SubAccountId"] == "")
        # KeyValueFormat: a JSON object with unique keys and scalar values
        pairs = json.loads(row["Tags"], object_pairs_hook=lambda kv: kv)
        assert len({k for k, _ in pairs}) == len(pairs)
        assert all(isinstance(v, (str, int, float, bool)) or v is None for _, v in pairs)
    assert len({(r["SubAccountId"], r["ChargePeriodStart"], r["SkuId"]) for r in rows}) == len(rows)


# ------------------------------------------------------------------------------------------------ reconciliation

def database_truth(db: Path) -> dict:
    """The totals straight from the run's tables, rounded once."""
    with duckdb.connect(str(db), read_only=True) as con:
        (cost, wasted, tokens, wasted_tokens), = con.sql(
            """
            SELECT round(sum(cost_usd), 2), round(sum(wasted_cost_usd), 2), sum(tokens),
                   round(sum(CASE WHEN cost_usd > 0 THEN tokens * least(wasted_cost_usd / cost_usd, 1) ELSE 0 END))
            FROM user_week_scores
            """
        ).fetchall()
        (requests, unpriced_tokens), = con.sql(
            "SELECT count(*), coalesce(sum(input_tokens + output_tokens + cache_read_tokens + cache_write_tokens), 0) "
            "FROM token_usage WHERE cost_usd IS NULL"
        ).fetchall()
    return {
        "cost": Decimal(str(cost)), "wasted": Decimal(str(wasted)), "tokens": int(tokens),
        "wasted_tokens": int(wasted_tokens), "unpriced_requests": int(requests), "unpriced_tokens": int(unpriced_tokens),
    }


def whole(value: str) -> int:
    """A token count: whole, though FOCUS quantities are written as decimals ('400.0')."""
    number = Decimal(value)
    assert number == number.to_integral_value(), value
    return int(number)


def totals(rows: list[dict[str, str]], cost: str, wasted: str, tokens: str, wasted_tokens: str) -> dict:
    return {
        "cost": sum((Decimal(r[cost]) for r in rows), Decimal(0)),
        "wasted": sum((Decimal(r[wasted]) for r in rows), Decimal(0)),
        "tokens": sum(int(r[tokens]) for r in rows),
        "wasted_tokens": sum(whole(r[wasted_tokens]) for r in rows),
    }


def test_every_file_reconciles_to_the_cent_and_the_token(report: dict) -> None:
    out, truth = report["out"], database_truth(report["db"])
    assert truth["unpriced_requests"] > 0 and truth["wasted"] > 0  # the world has what this test is about
    expected = {k: truth[k] for k in ("cost", "wasted", "tokens", "wasted_tokens")}
    (summary,) = read_csv(out / "summary.csv")
    assert totals([summary], "total_cost_usd", "wasted_cost_usd", "total_tokens", "wasted_tokens") == expected
    for name in ("wasted_by_week.csv", "wasted_by_team.csv", "wasted_by_model.csv", PEOPLE_FILE):
        assert totals(read_csv(out / name), "cost_usd", "wasted_cost_usd", "tokens", "wasted_tokens") == expected, name
    focus = read_csv(out / "focus_wasted_cost.csv")
    for cost_column in COST_COLUMNS:
        for quantity in ("ConsumedQuantity", "PricingQuantity"):
            assert totals(focus, "x_TotalCost", cost_column, "x_TotalTokens", quantity) == expected, (cost_column, quantity)
    # usage with no price: counted at $0, its requests and tokens in summary, by model and in FOCUS
    models = read_csv(out / "wasted_by_model.csv")
    assert (int(summary["unpriced_requests"]), int(summary["unpriced_tokens"])) == (truth["unpriced_requests"], truth["unpriced_tokens"])
    assert sum(int(m["unpriced_requests"]) for m in models) == truth["unpriced_requests"]
    assert sum(int(m["unpriced_tokens"]) for m in models) == truth["unpriced_tokens"]
    assert sum(int(r["x_UnpricedTokens"]) for r in focus) == truth["unpriced_tokens"]
    assert summary["unpriced_models"] == ", ".join(sorted(m["model"] for m in models if int(m["unpriced_requests"])))


def test_focus_rows_of_a_model_add_up_to_its_line(report: dict) -> None:
    out = report["out"]
    by_sku: dict[str, dict] = defaultdict(lambda: {"cost": Decimal(0), "wasted": Decimal(0), "tokens": 0, "wasted_tokens": 0, "unpriced": 0})
    for r in read_csv(out / "focus_wasted_cost.csv"):
        cell = by_sku[r["SkuId"]]
        cell["cost"] += Decimal(r["x_TotalCost"])
        cell["wasted"] += Decimal(r["BilledCost"])
        cell["tokens"] += int(r["x_TotalTokens"])
        cell["wasted_tokens"] += whole(r["ConsumedQuantity"])
        cell["unpriced"] += int(r["x_UnpricedTokens"])
    models = {m["model"]: m for m in read_csv(out / "wasted_by_model.csv")}
    assert set(by_sku) == set(models)
    for model, m in models.items():
        assert by_sku[model] == {
            "cost": Decimal(m["cost_usd"]), "wasted": Decimal(m["wasted_cost_usd"]), "tokens": int(m["tokens"]),
            "wasted_tokens": int(m["wasted_tokens"]), "unpriced": int(m["unpriced_tokens"]),
        }, model


def test_unpriced_usage_is_kept_in_focus_and_stated_on_the_page(report: dict) -> None:
    out, truth = report["out"], database_truth(report["db"])
    focus = read_csv(out / "focus_wasted_cost.csv")
    unpriced = [r for r in focus if int(r["x_UnpricedTokens"]) > 0]
    assert unpriced and any(Decimal(r["BilledCost"]) == 0 for r in unpriced)
    assert all("requests with no price counted at $0" in r["ChargeDescription"] for r in unpriced)
    page = html.unescape((out / "report.html").read_text(encoding="utf-8"))
    n, t = truth["unpriced_requests"], truth["unpriced_tokens"]
    assert f"{n:,} request{'s' if n != 1 else ''}, {t:,} tokens of models with no price are counted at $0" in page


# ------------------------------------------------------------------------------------------------ the page's words

def test_flags_without_wasted_cost_are_explained_from_the_flags(world: dict) -> None:
    with duckdb.connect(str(world["db"]), read_only=True) as con:
        flags = con.sql(
            "SELECT team, detectors FROM user_week_scores WHERE flagged AND wasted_cost_usd = 0"
        ).fetchall()
        all_zero = {t for (t,) in con.sql(
            "SELECT team FROM user_week_scores GROUP BY team HAVING bool_or(flagged) AND sum(wasted_cost_usd) = 0"
        ).fetchall()}
    assert flags, "the world has flags that carry no wasted cost"
    expected = defaultdict(lambda: [0, set()])
    for team, detectors in flags:
        expected[team][0] += 1
        expected[team][1] |= set(detectors)
    teams = {r["team"]: r for r in read_csv(world["out"] / "wasted_by_team.csv")}
    for team, row in teams.items():
        count, detectors = expected.get(team, [0, set()])
        assert int(row["flagged_user_weeks_without_waste"]) == count, team
        assert row["detectors_without_waste"] == ", ".join(sorted(detectors)), team
    (summary,) = read_csv(world["out"] / "summary.csv")
    assert int(summary["flagged_user_weeks_without_waste"]) == len(flags)

    page = html.unescape((world["out"] / "report.html").read_text(encoding="utf-8"))
    note = page[page.index('id="flags-without-waste"'):].split("</p>")[0]
    assert f"{len(flags)} of {summary['flagged_user_weeks']} flagged user-weeks carry no wasted cost" in note
    assert all(team in note for team in all_zero)
    rules = {d for _, detectors in flags for d in detectors if d.startswith("rule:")}
    for rule in rules:
        assert f"raised by the {rule.removeprefix('rule:').replace('_', ' ')} rule" in note
    if "rule:deployment_splitting" in rules:  # its wasted cost is "0" in the run's settings
        assert "its wasted cost is $0 by design" in note


def test_the_week_the_data_ends_in_is_partial(world: dict) -> None:
    with duckdb.connect(str(world["db"]), read_only=True) as con:
        (data_end,), = con.sql("SELECT max(ts) FROM token_usage").fetchall()
    weeks = read_csv(world["out"] / "wasted_by_week.csv")
    last = weeks[-1]
    assert datetime.date.fromisoformat(last["week_start"]) <= data_end.date() <= datetime.date.fromisoformat(last["week_end"])
    assert (last["complete"], last["wow_change_usd"], last["wow_change_ratio"], last["trend_wasted_cost_usd"]) == ("false", "", "", "")
    assert all(w["complete"] == "true" for w in weeks[:-1])
    assert weeks[1]["wow_change_usd"] != ""
    (summary,) = read_csv(world["out"] / "summary.csv")
    assert summary["last_week_complete"] == "false"
    assert summary["data_end"] == f"{data_end:%Y-%m-%dT%H:%M:%S}Z"
    page = html.unescape((world["out"] / "report.html").read_text(encoding="utf-8"))
    assert f"The data ends {data_end:%a %d %b %Y %H:%M} UTC, inside {last['iso_week']}" in page
    assert "that week is partial (young)" in page
    assert f"Last complete week ({weeks[-2]['iso_week']}) against the week before" in page
