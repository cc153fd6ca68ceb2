"""Alerts: subscriptions from the TOML config (`[[alerts]]`), delivered through Prefect notification blocks.

    summary = send_alerts(db_path, subscriptions, now=now, run_id=run_id)

after a run has published: for each subscription, the flags and weekly wasted cost it matches that
were not sent to it yet (pipeline/publish/sql/alert_candidates.sql) go out in one message, and are
recorded in `alerts_sent` in the published database, so nothing is sent twice. `immediate`
subscriptions send after every run with something new; `daily` and `weekly` ones send one digest
per day or ISO week of `now` (the run's clock). Destinations (docs/alerts.md):

    slack:https://hooks.slack.com/services/...   SlackWebhook
    teams:https://...webhook.office.com/...      MicrosoftTeamsWebhook
    webhook:https://example.com/hook             CustomWebhookNotificationBlock, JSON {subject, body, name}
    email:mailtos://user:pass@smtp.example.com?to=a@example.com   an Apprise SMTP URL (EmailNotification)
    block:slack-webhook/edge-alerts              a notification block saved on the Prefect server
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from pydantic import Field, SecretStr
from prefect.blocks.core import Block
from prefect.blocks.notifications import (
    AbstractAppriseNotificationBlock, CustomWebhookNotificationBlock, MicrosoftTeamsWebhook, SlackWebhook,
)

from pipeline.publish import root_cause
from pipeline.publish.alert_subscriptions import SEVERITIES, Subscription
from pipeline import sql_models
from pipeline.storage import connect
from pipeline.ops.workspace import building, run_lock

MAX_ITEMS = 25  # items named in one message; the rest are counted
logger = logging.getLogger(__name__)


class EmailNotification(AbstractAppriseNotificationBlock):
    """Email through Apprise's SMTP support: `url` is an Apprise mailto:// or mailtos:// URL."""

    _block_type_name = "Goodhart Email"
    url: SecretStr = Field(default=..., description="Apprise SMTP URL, e.g. mailtos://user:pass@smtp.example.com?to=a@example.com")


def notification_block(to: str) -> Block:
    """The Prefect notification block a subscription's `to` names."""
    kind, _, target = to.partition(":")
    if kind == "slack":
        return SlackWebhook(url=target)
    if kind == "teams":
        return MicrosoftTeamsWebhook(url=target)
    if kind == "webhook":
        return CustomWebhookNotificationBlock(
            name="goodhart", url=target, json_data={"subject": "{{subject}}", "body": "{{body}}", "name": "{{name}}"})
    if kind == "email":
        return EmailNotification(url=target)
    return Block.load(target)  # "block-type-slug/block-name", saved on the Prefect server


def period(frequency: str, now: datetime, run_id: str) -> str:
    """The digest period of `now`: its day (daily), its ISO week (weekly); the run (immediate)."""
    if frequency == "daily":
        return now.date().isoformat()
    if frequency == "weekly":
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}"
    return run_id


@dataclass(frozen=True)
class AlertSummary:
    sent: dict[str, int]           # subscription -> items in the message it was sent
    failed: dict[str, str]         # subscription -> why delivery failed (sent again next run)


def send_alerts(db_path: Path, subscriptions: list[Subscription], *, now: datetime, run_id: str | None) -> AlertSummary:
    """Send what each subscription has due and record it in alerts_sent (published like a verdict:
    under the run lock, on a private copy renamed over the database)."""
    if not subscriptions or not db_path.is_file():
        return AlertSummary({}, {})
    sent: dict[str, int] = {}
    failed: dict[str, str] = {}
    with run_lock(db_path, wait=True), building(db_path) as work:
        with connect(work) as con:
            sql_models.load("pipeline.publish").execute(con, "alerts_sent")
            due = _due(con, subscriptions, now, run_id)
            for subscription, items in due:
                subject, body = message(con, subscription, items)
                try:
                    notification_block(subscription.to).notify(body=body, subject=subject)
                except Exception as error:  # a failed destination must not lose the others' records
                    failed[subscription.name] = f"{type(error).__name__}: {error}"[:300]
                    logger.warning("alert %r not delivered: %s", subscription.name, failed[subscription.name])
                    continue
                _record(con, subscription, items, period(subscription.frequency, now, run_id or ""), now, run_id)
                sent[subscription.name] = len(items)
            con.execute("CHECKPOINT")
    return AlertSummary(sent, failed)


def _due(con: duckdb.DuckDBPyConnection, subscriptions: list[Subscription], now: datetime,
         run_id: str | None) -> list[tuple[Subscription, list[dict[str, Any]]]]:
    """Each subscription with its unsent items, digests whose period was already sent left out."""
    con.execute("CREATE OR REPLACE TEMP TABLE alert_subscriptions (subscription VARCHAR, scope VARCHAR, scope_name VARCHAR, "
                "min_severity_rank INTEGER, wasted_usd_over DOUBLE, wasted_share_over DOUBLE)")
    con.executemany("INSERT INTO alert_subscriptions VALUES (?, ?, ?, ?, ?, ?)", [
        (s.name, s.scope, s.scope_name, None if s.min_severity is None else SEVERITIES.index(s.min_severity) + 1,
         s.wasted_usd_over, s.wasted_share_over)
        for s in subscriptions
    ])
    relation = con.sql(sql_models.load("pipeline.publish").sql("alert_candidates"))
    candidates = [dict(zip(relation.columns, row)) for row in relation.fetchall()]
    done = set(con.execute(
        "SELECT DISTINCT subscription, period FROM alerts_sent WHERE frequency <> 'immediate'").fetchall())
    due = []
    for subscription in subscriptions:
        items = [c for c in candidates if c["subscription"] == subscription.name]
        if items and (subscription.name, period(subscription.frequency, now, run_id or "")) not in done:
            due.append((subscription, items))
    return due


def _record(con: duckdb.DuckDBPyConnection, subscription: Subscription, items: list[dict[str, Any]], when: str,
            now: datetime, run_id: str | None) -> None:
    con.executemany(
        "INSERT INTO alerts_sent VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(subscription.name, subscription.frequency, when, i["item_kind"], i["item_id"], subscription.destination,
          run_id, now.replace(tzinfo=None)) for i in items],
    )


def _scope(subscription: Subscription) -> str:
    return "the company" if subscription.scope == "company" else f"{subscription.scope} {subscription.scope_name}"


def message(con: duckdb.DuckDBPyConnection, subscription: Subscription, items: list[dict[str, Any]]) -> tuple[str, str]:
    """Subject and plain-text body: each flag with its case file, each week's waste with its causes."""
    flags = [i for i in items if i["item_kind"] == "flag"]
    weeks = [i for i in items if i["item_kind"] == "waste"]
    counts = [f"{len(flags)} new flag{'s' if len(flags) != 1 else ''}"] if flags else []
    counts += [f"wasted cost over the threshold in {len(weeks)} week{'s' if len(weeks) != 1 else ''}"] if weeks else []
    kind = "digest" if subscription.frequency != "immediate" else "alert"
    subject = f"Goodhart {subscription.frequency} {kind} {subscription.name!r} for {_scope(subscription)}: {', '.join(counts)}"
    lines = [subject, ""]
    with_causes = subscription.scope == "company" and root_cause.has_tables(con)
    for item in weeks[:MAX_ITEMS]:
        share = item["wasted_cost_usd"] / item["cost_usd"] if item["cost_usd"] else None
        lines.append(f"- week of {item['week_start']}: wasted ${item['wasted_cost_usd']:,.2f} of ${item['cost_usd']:,.2f} spend"
                     + (f" ({share:.1%})" if share is not None else ""))
        if with_causes and (cause := root_cause.headline(root_cause.rows(con, week=item["week_start"]))):
            lines.append(f"  root cause: {cause}")
    for item in flags[:MAX_ITEMS]:
        detectors = ", ".join(d.removeprefix("rule:").replace("_", " ") for d in item["detectors"] or [])
        lines.append(
            f"- flag {item['item_id']}: {item['severity']} {item['level'].replace('_', '-')} of {item['user_id']} "
            f"(team {item['team']}, week of {item['week_start']}), wasted ${item['wasted_cost_usd']:,.2f}; {detectors}. "
            f"Case file: {case_file_command(item['item_id'])}")
    left = max(len(flags) - MAX_ITEMS, 0) + max(len(weeks) - MAX_ITEMS, 0)
    if left:
        lines.append(f"... and {left} more (alerts_sent in the database lists every one)")
    return subject, "\n".join(lines) + "\n"


def case_file_command(flag_id: str) -> str:
    """Where a flag's case file is written and the command that writes it (pipeline.publish.case_file)."""
    from pipeline.publish.case_file import case_file_name  # charting libraries: imported only when a flag is sent

    return f"{case_file_name(flag_id)}, written by: goodhart explain '{flag_id}' --db DB --out DIR"
