"""One settings object: packaged defaults merged with an optional user TOML file, built once at the edge.

The `[detectors]` table is kept as the user wrote it: the detectors' own defaults are merged in
by flows.py (`Settings.with_detectors`), so that reading settings imports nothing of the detectors.
"""
from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError
from pipeline.publish.alert_subscriptions import Subscription, parse_subscriptions


def _read_toml(package: str, name: str) -> dict[str, Any]:
    """A TOML file shipped inside a package."""
    return tomllib.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` merged over `base`, nested tables merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def default_config() -> dict[str, Any]:
    """The packaged pipeline settings; `detectors` empty (no overrides of the detectors' defaults)."""
    return _read_toml("pipeline", "default_config.toml") | {"detectors": {}}


class ConfigError(UsageError):
    """An unusable configuration file: not TOML, or a pipeline setting of the wrong shape."""


IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MEMORY_LIMIT = re.compile(r"(\d+(\.\d+)?\s*([KMGT]i?B|%))?", re.IGNORECASE)  # "" = DuckDB's default
DASK_ADDRESS = re.compile(r"((tcp|tls|ucx|inproc)://[\w.\-\[\]:/]+)?")
SOURCE_SETTINGS = {"github_deployments": ("environments",)}  # [sources.NAME] keys: adapter keyword arguments
SETTING_MAX = 1e6  # hours, minutes, bits, weeks: larger values overflow the feature SQL


# Tables whose keys are free: a model feature's transform or fill, a model's own parameters (the
# model checks them), an adapter's settings (_check_sources). [[detectors.rules]] is a list: each
# rule is checked when it is parsed.
OPEN_TABLES = ("sources", "detectors.levels.*.model.transforms", "detectors.levels.*.model.fill",
               "detectors.levels.*.iforest", "detectors.levels.*.ensemble")
DETECTOR_TABLES = ("policy", "levels", "rules")  # what a misplaced [detectors] table starts with


def check_known(given: Mapping[str, Any], known: Mapping[str, Any], where: str = "") -> None:
    """ConfigError naming the settings in `given` (a user's TOML) that `known` (the defaults) has no
    key for: a misspelt or misplaced setting would otherwise change nothing, silently."""
    unknown = _unknown(given, known, where)
    if not unknown:
        return
    hint = next((f"; detector settings go under [detectors], e.g. [detectors.{name}]"
                 for name in unknown if name in DETECTOR_TABLES), "")
    raise ConfigError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown[:5])}"
                      f" (not in the packaged defaults{hint})"[:300])


def _unknown(given: Mapping[str, Any], known: Mapping[str, Any], where: str) -> list[str]:
    unknown = []
    for key, value in given.items():
        name = f"{where}.{key}" if where else key
        if key not in known:
            unknown.append(name)
        elif (isinstance(value, Mapping) and isinstance(known[key], Mapping)
              and not any(fnmatchcase(name, table) for table in OPEN_TABLES)):
            unknown += _unknown(value, known[key], name)
    return unknown


def check_config(config: dict[str, Any]) -> None:
    """Raise ConfigError unless the pipeline's own settings are finite numbers under plain names
    ([features] names become SQL variable names; the values are passed as parameters)."""
    def number(section: str, key: str, value: Any, *, minimum: float = 0.0) -> None:
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or not minimum <= value <= SETTING_MAX):
            raise ConfigError(f"[{section}] {key} must be a number from {minimum:g} to {SETTING_MAX:g}, not {value!r}"[:200])

    for section, keys in (("load", ("max_future_skew_hours",)), ("links", ("window_hours", "review_window_hours"))):
        table = config.get(section)
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] must be a table")
        for key in keys:
            number(section, key, table.get(key))
    features = config.get("features")
    if not isinstance(features, dict):
        raise ConfigError("[features] must be a table")
    for key, value in features.items():
        if not IDENTIFIER.fullmatch(key):
            raise ConfigError(f"[features] key {key!r} is not a plain name (letters, digits, _)"[:200])
        number("features", key, value, minimum=-SETTING_MAX)
    run, engine = config.get("run"), config.get("engine")
    if not isinstance(run, dict) or not isinstance(run.get("incremental"), bool):
        raise ConfigError("[run] incremental must be true or false")
    if not isinstance(engine, dict):
        raise ConfigError("[engine] must be a table")
    limit = engine.get("duckdb_memory_limit")
    if not isinstance(limit, str) or not MEMORY_LIMIT.fullmatch(limit):
        raise ConfigError(f"[engine] duckdb_memory_limit must look like \"3GB\", \"512MiB\" or \"75%\", not {limit!r}"[:200])
    address = engine.get("dask_address")
    if not isinstance(address, str) or not DASK_ADDRESS.fullmatch(address):
        raise ConfigError(f"[engine] dask_address must be \"\" or like \"tcp://host:8786\", not {address!r}"[:200])
    _whole_number(engine, "dask_workers", 0, 1024)
    _whole_number(engine, "scoring_threads", 1, 64)
    _whole_number(engine, "dask_min_rows", 0, None)
    _whole_number(engine, "scoring_partition_rows", 0, None)
    _check_security(config.get("security"))
    _check_sources(config.get("sources", {}))
    try:
        parse_subscriptions(config.get("alerts", []))
    except ValueError as error:
        raise ConfigError(str(error)[:300]) from None


def _check_security(table: Any) -> None:
    """[security]: the key's block name and file path are strings, group_readable true or false."""
    if not isinstance(table, dict):
        raise ConfigError("[security] must be a table")
    for key in ("fingerprint_key_block", "fingerprint_key_file"):
        if not isinstance(table.get(key), str):
            raise ConfigError(f"[security] {key} must be a string (\"\" for none), not {table.get(key)!r}"[:200])
    if not isinstance(table.get("group_readable"), bool):
        raise ConfigError("[security] group_readable must be true or false")


def _check_sources(table: Any) -> None:
    """[sources.NAME] tables: only the settings an adapter takes (SOURCE_SETTINGS), each a list of strings."""
    if not isinstance(table, dict):
        raise ConfigError("[sources] must be a table")
    for name, settings in table.items():
        known = SOURCE_SETTINGS.get(name)
        if known is None or not isinstance(settings, dict):
            raise ConfigError(f"[sources.{name}] is not a source with settings (known: {', '.join(SOURCE_SETTINGS)})"[:200])
        for key, value in settings.items():
            if key not in known:
                raise ConfigError(f"[sources.{name}] {key} is not a setting (known: {', '.join(known)})"[:200])
            if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
                raise ConfigError(f"[sources.{name}] {key} must be a list of non-empty strings, not {value!r}"[:200])


def _whole_number(engine: dict[str, Any], key: str, low: int, high: int | None) -> None:
    value = engine.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"from {low}"
        raise ConfigError(f"[engine] {key} must be a whole number {span}, not {value!r}"[:200])


@dataclass(frozen=True)
class Settings:
    """Effective configuration of one run."""

    config: dict[str, Any] = field(default_factory=default_config)

    def __post_init__(self) -> None:
        check_config(self.config)

    @classmethod
    def from_file(cls, path: Path | None) -> "Settings":
        """Defaults, with the TOML file at `path` merged over them when given."""
        config = default_config()
        if path is not None:
            try:
                with open(path, "rb") as fh:
                    user = tomllib.load(fh)
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as error:
                raise ConfigError(f"cannot read {path}: {error}") from None
            if not isinstance(user.get("detectors", {}), dict):
                raise ConfigError("[detectors] must be a table")  # checked against its defaults in flows.py
            check_known({k: v for k, v in user.items() if k != "detectors"}, config | {"alerts": []})
            config = deep_merge(config, user)
        return cls(config)

    def with_detectors(self, detectors: dict[str, Any]) -> "Settings":
        """These settings with `detectors` as the whole [detectors] table (flows.py merges the
        detectors' defaults in at the edge, rules by name)."""
        return Settings(self.config | {"detectors": detectors})

    @property
    def max_future_skew(self) -> timedelta:
        return timedelta(hours=float(self.config["load"]["max_future_skew_hours"]))

    @property
    def feature_variables(self) -> dict[str, float | int]:
        """Values the feature SQL reads with getvariable(name)."""
        links = self.config["links"]
        return {"link_window_hours": links["window_hours"], "review_window_hours": links["review_window_hours"],
                **self.config["features"]}

    @property
    def incremental(self) -> bool:
        return bool(self.config["run"]["incremental"])

    @property
    def duckdb_memory_limit(self) -> str:
        return str(self.config["engine"]["duckdb_memory_limit"])

    @property
    def dask_address(self) -> str:
        return str(self.config["engine"]["dask_address"])

    @property
    def dask_workers(self) -> int:
        return int(self.config["engine"]["dask_workers"])

    @property
    def scoring_threads(self) -> int:
        return int(self.config["engine"]["scoring_threads"])

    @property
    def dask_min_rows(self) -> int:
        return int(self.config["engine"]["dask_min_rows"])

    @property
    def scoring_partition_rows(self) -> int:
        return int(self.config["engine"]["scoring_partition_rows"])

    @property
    def source_options(self) -> dict[str, dict[str, Any]]:
        """Keyword arguments of each source adapter that has settings ([sources.NAME])."""
        return {name: dict(table) for name, table in self.config.get("sources", {}).items()}

    @property
    def fingerprint_key_block(self) -> str:
        """The Prefect Secret block holding the fingerprint key ("" for none)."""
        return str(self.config["security"]["fingerprint_key_block"])

    @property
    def fingerprint_key_file(self) -> Path | None:
        """The fingerprint key file; None: the default place (pipeline.ingest.fingerprint_key)."""
        path = self.config["security"]["fingerprint_key_file"]
        return Path(path).expanduser() if path else None

    @property
    def group_readable(self) -> bool:
        """Whether the owner's group may read the database and reports (pipeline.ops.permissions)."""
        return bool(self.config["security"]["group_readable"])

    @property
    def alert_subscriptions(self) -> list[Subscription]:
        """The `[[alerts]]` subscriptions (pipeline.publish.alerts, docs/alerts.md)."""
        return parse_subscriptions(self.config.get("alerts", []))

    @property
    def detectors(self) -> dict[str, Any]:
        """The [detectors] table: the user's overrides, or (after flows merged them) the whole config."""
        return self.config.get("detectors", {})

    @property
    def default_prices(self) -> Path:
        return Path(str(resources.files("pipeline.ingest").joinpath("prices.csv")))
