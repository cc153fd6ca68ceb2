"""The detectors' settings: the packaged defaults and how a user's TOML merges over them.

Kept apart from the models so that reading a configuration imports no model library.
"""
from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any


def default_config() -> dict[str, Any]:
    """The packaged ``default_config.toml`` as a dict."""
    text = resources.files("detectors").joinpath("default_config.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def known_settings(defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Every key a user's detector settings may set: the ``defaults``' (``default_config()``), plus a
    level's own ``policy`` table (``detectors.scoring.level_policy`` reads it over the shared one)."""
    levels = {name: level | {"policy": defaults["policy"]} for name, level in defaults["levels"].items()}
    return defaults | {"levels": levels}


def merge_config(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``.

    Tables merge key by key. ``rules`` merge by (name, level): an override entry updates
    the matching rule's keys (a given ``conditions`` list replaces the old one; ``enabled =
    false`` switches a rule off); an entry with a new name is added.
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if key == "rules":
            rules = [dict(r) for r in out.get("rules", [])]
            index = {(r["name"], r["level"]): i for i, r in enumerate(rules)}
            for entry in value:
                ident = (entry["name"], entry.get("level"))
                match = index.get(ident)
                if match is None and entry.get("level") is None:
                    named = [i for (n, _), i in index.items() if n == entry["name"]]
                    if len(named) != 1:
                        levels = " and ".join(rules[i]["level"] for i in named)
                        raise ValueError(f"rule {entry['name']!r} needs a level (level = \"user_week\" or \"session\")"
                                         + (f": it is defined at {levels}" if named else ""))
                    match = named[0]
                if match is None:
                    rules.append(copy.deepcopy(dict(entry)))
                else:
                    rules[match].update(copy.deepcopy(dict(entry)))
            out["rules"] = rules
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
