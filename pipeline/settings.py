"""One settings object: packaged defaults merged with an optional user TOML file, built once at the edge."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from detectors.scoring import default_config as detector_defaults
from detectors.scoring import merge_config as merge_detector_config


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
    config = _read_toml("pipeline", "default_config.toml")
    config["detectors"] = detector_defaults()
    return config


@dataclass(frozen=True)
class Settings:
    """Effective configuration of one run."""

    config: dict[str, Any] = field(default_factory=default_config)

    @classmethod
    def from_file(cls, path: Path | None) -> "Settings":
        """Defaults, with the TOML file at `path` merged over them when given."""
        config = default_config()
        if path is not None:
            with open(path, "rb") as fh:
                user = tomllib.load(fh)
            # detector rules merge by name (one threshold can change without restating the rule)
            detectors = merge_detector_config(config.pop("detectors"), user.pop("detectors", {}))
            config = deep_merge(config, user) | {"detectors": detectors}
        return cls(config)

    @property
    def max_future_skew(self) -> timedelta:
        return timedelta(hours=float(self.config["load"]["max_future_skew_hours"]))

    @property
    def feature_variables(self) -> dict[str, float | int]:
        """Values the feature SQL reads with getvariable(name)."""
        return {"link_window_hours": self.config["links"]["window_hours"], **self.config["features"]}

    @property
    def detectors(self) -> dict[str, Any]:
        return self.config["detectors"]

    @property
    def default_prices(self) -> Path:
        return Path(str(resources.files("data").joinpath("prices.csv")))
