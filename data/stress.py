"""Stress worlds: an agentic world drawn with some of `data/agentic.py`'s habits changed.

An independent world calibrated to the same published figures will not share this generator's
habits (how often people approve, how often a turn keeps code, how many changes name their
sessions). Regenerating a tuning world with one habit changed at a time shows which rules lean on
one (docs/detectors.md, "When people's habits differ from the generator's"):

    from data.stress import generate_stressed_world
    generate_stressed_world(out, {"APPROVAL_SHARE": 0.4, "WORK.code_share": 0.3}, users=600, weeks=8, seed=13)

or `goodhart generate OUT --style agentic --seed 13 --habit APPROVAL_SHARE=0.4 --habit WORK.code_share=0.3`.

A habit is named as one of three things:
- `NAME`: a calibration constant of data/agentic.py (a number or a tuple of numbers), e.g. APPROVAL_SHARE;
- `KIND.field`: one field of a session kind's AgentSpec, e.g. WORK.code_share;
- `*.field`: that field of every kind, multiplied by the value, e.g. *.calls_mean=2.5.
Constants are read while the world is drawn; ones derived from others at import (TOOL_RATE) do not
follow. The changed habits are recorded in the world's labels/world.json under "habits".
"""
from __future__ import annotations

import ast
import dataclasses
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from data import agentic

Habits = Mapping[str, float | tuple[float, ...]]


def parse_habit(text: str) -> tuple[str, float | tuple[float, ...]]:
    """'NAME=VALUE' -> (NAME, value); raises ValueError for a malformed or unknown habit."""
    name, sep, raw = text.partition("=")
    if not sep:
        raise ValueError(f"a habit is NAME=VALUE, not {text!r}")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        raise ValueError(f"the value of habit {name.strip()!r} is not a number or a tuple of numbers: {raw!r}") from None
    name = name.strip()
    _check(name, value)
    return name, value


def _numbers(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_numbers(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kinds() -> dict[str, int]:
    """Session kinds by their constant's name (WORK, EXPLORE, ..., TEAM_COLLUSION)."""
    return {name.upper(): index for index, name in enumerate(agentic.KINDS)}


def _kind(name: str) -> int:
    kinds = _kinds()
    if name not in kinds:
        raise ValueError(f"unknown session kind {name!r}; one of {', '.join(kinds)}")
    return kinds[name]


def _check(name: str, value: Any) -> None:
    if not _numbers(value):
        raise ValueError(f"habit {name!r} must be a number or a tuple of numbers, not {value!r}")
    if "." in name:
        kind, field = name.split(".", 1)
        if field not in {f.name for f in dataclasses.fields(agentic.AgentSpec)}:
            raise ValueError(f"unknown AgentSpec field {field!r} in habit {name!r}")
        if kind != "*":
            _kind(kind)
        if isinstance(value, tuple):
            raise ValueError(f"habit {name!r} takes a number")
        return
    current = agentic.__dict__.get(name)
    if not name.isupper() or not _numbers(current):
        raise ValueError(f"{name!r} is not a numeric calibration constant of data/agentic.py")
    if isinstance(current, tuple) != isinstance(value, tuple) or (
            isinstance(value, tuple) and len(value) != len(current)):
        raise ValueError(f"habit {name!r} must have the shape of its value {current!r}")


@contextmanager
def habits(changed: Habits) -> Iterator[None]:
    """Change data/agentic.py's habits while the block runs; restored afterwards, whatever happens."""
    for name, value in changed.items():
        _check(name, value)
    constants = {name: agentic.__dict__[name] for name in changed if "." not in name}
    specs = dict(agentic.SPECS)
    try:
        for name, value in changed.items():
            if "." not in name:
                setattr(agentic, name, value)
                continue
            kind_name, field = name.split(".", 1)
            kinds = list(agentic.SPECS) if kind_name == "*" else [_kind(kind_name)]
            for kind in kinds:
                spec = agentic.SPECS[kind]
                new = getattr(spec, field) * value if kind_name == "*" else value
                agentic.SPECS[kind] = dataclasses.replace(spec, **{field: new})
        yield
    finally:
        for name, value in constants.items():
            setattr(agentic, name, value)
        agentic.SPECS.clear()
        agentic.SPECS.update(specs)


def generate_stressed_world(out_dir: Path, changed: Habits, **kwargs: Any) -> Any:
    """`data.generate.generate_world(out_dir, **kwargs)` (style agentic unless given) drawn with
    `changed` habits, which labels/world.json records; no habits, the world as generated."""
    from data.generate import generate_world

    kwargs.setdefault("style", "agentic")
    if changed and kwargs["style"] != "agentic":
        raise ValueError("a habit changes the agentic generator: add --style agentic")
    with habits(changed):
        summary = generate_world(out_dir, **kwargs)
    if changed:
        meta_path = Path(out_dir) / "labels" / "world.json"
        meta = json.loads(meta_path.read_text())
        meta["habits"] = {name: list(v) if isinstance(v, tuple) else v for name, v in changed.items()}
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return summary
