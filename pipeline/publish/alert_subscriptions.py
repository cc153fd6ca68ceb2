"""Alert subscriptions: the `[[alerts]]` tables of the TOML config, checked (no Prefect import here:
the settings read them). Delivery is pipeline/publish/alerts.py; the reader's guide docs/alerts.md."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FREQUENCIES = ("immediate", "daily", "weekly")
SEVERITIES = ("low", "medium", "high")
DESTINATIONS = ("slack", "teams", "webhook", "email", "block")


@dataclass(frozen=True)
class Subscription:
    """One `[[alerts]]` entry."""

    name: str
    scope: str                     # team | org | company
    scope_name: str | None         # the team's or org's name; None for the company
    frequency: str                 # immediate | daily | weekly
    to: str                        # "<kind>:<target>", see the module doc
    min_severity: str | None = None
    wasted_usd_over: float | None = None
    wasted_share_over: float | None = None

    @property
    def destination(self) -> str:
        return self.to.partition(":")[0]


def parse_subscriptions(entries: Any) -> list[Subscription]:
    """The `[[alerts]]` entries as subscriptions; ValueError names the first bad one."""
    if not isinstance(entries, list):
        raise ValueError("alerts must be a list of [[alerts]] tables")
    subscriptions: list[Subscription] = []
    for number, entry in enumerate(entries, 1):
        where = f"[[alerts]] entry {number}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a table")
        known = {"name", "team", "org", "frequency", "to", "min_severity", "wasted_usd_over", "wasted_share_over"}
        if unknown := sorted(set(entry) - known):
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        name, to, frequency = entry.get("name"), entry.get("to"), entry.get("frequency", "immediate")
        if not isinstance(name, str) or not name.strip() or name in {s.name for s in subscriptions}:
            raise ValueError(f"{where}: name must be a non-empty string, unique among the alerts")
        if frequency not in FREQUENCIES:
            raise ValueError(f"{where} ({name}): frequency must be one of {', '.join(FREQUENCIES)}, not {frequency!r}")
        if not isinstance(to, str) or to.partition(":")[0] not in DESTINATIONS or not to.partition(":")[2]:
            raise ValueError(f"{where} ({name}): to must be \"<kind>:<target>\" with kind one of {', '.join(DESTINATIONS)}")
        if "team" in entry and "org" in entry:
            raise ValueError(f"{where} ({name}): give team or org, not both (neither: the whole company)")
        scope = "team" if "team" in entry else "org" if "org" in entry else "company"
        scope_name = entry.get(scope)
        if scope != "company" and (not isinstance(scope_name, str) or not scope_name):
            raise ValueError(f"{where} ({name}): {scope} must be a non-empty string")
        severity = entry.get("min_severity")
        if severity is not None and severity not in SEVERITIES:
            raise ValueError(f"{where} ({name}): min_severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
        usd, share = entry.get("wasted_usd_over"), entry.get("wasted_share_over")
        for key, value, high in (("wasted_usd_over", usd, 1e12), ("wasted_share_over", share, 1.0)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high):
                raise ValueError(f"{where} ({name}): {key} must be a number from 0 to {high:g}, not {value!r}")
        if severity is None and usd is None and share is None:
            raise ValueError(f"{where} ({name}): give min_severity, wasted_usd_over or wasted_share_over")
        subscriptions.append(Subscription(
            name=name, scope=scope, scope_name=scope_name, frequency=frequency, to=to, min_severity=severity,
            wasted_usd_over=None if usd is None else float(usd), wasted_share_over=None if share is None else float(share),
        ))
    return subscriptions
