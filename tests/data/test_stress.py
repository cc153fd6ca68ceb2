"""Tests of stress worlds (data/stress.py): habits parsed and checked, changed only while a world is
drawn, and a changed habit changes the world the way it says."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from data import agentic, prompts
from data.stress import generate_stressed_world, habits, parse_habit

APPROVALS = list(prompts.FAMILY_TEMPLATES[prompts.APPROVAL])


@pytest.mark.parametrize(("text", "parsed"), [
    ("APPROVAL_SHARE=0.4", ("APPROVAL_SHARE", 0.4)),
    (" TRAILER_SHARE = 0 ", ("TRAILER_SHARE", 0)),
    ("WORK.code_share=0.3", ("WORK.code_share", 0.3)),
    ("*.calls_mean=2.5", ("*.calls_mean", 2.5)),
])
def test_a_habit_is_a_name_and_a_number(text: str, parsed: tuple[str, float]) -> None:
    assert parse_habit(text) == parsed


@pytest.mark.parametrize(("text", "said"), [
    ("APPROVAL_SHARE", "NAME=VALUE"),
    ("APPROVAL_SHARE=lots", "not a number"),
    ("APPROVAL_SHARE='0.4'", "must be a number"),
    ("NO_SUCH_HABIT=1", "not a numeric calibration constant"),
    ("KINDS=1", "not a numeric calibration constant"),
    ("CACHE_TTLS_MS=1", "shape"),
    ("CACHE_TTLS_MS=(1, 2, 3)", "shape"),
    ("NOPE.code_share=0.3", "unknown session kind"),
    ("WORK.no_field=0.3", "unknown AgentSpec field"),
    ("WORK.code_share=(1, 2)", "takes a number"),
])
def test_a_malformed_or_unknown_habit_says_why(text: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        parse_habit(text)


def test_habits_hold_only_inside_the_block_even_when_it_fails() -> None:
    approvals, work, explore = agentic.APPROVAL_SHARE, agentic.SPECS[agentic.WORK], agentic.SPECS[agentic.EXPLORE]
    with pytest.raises(RuntimeError), habits({"APPROVAL_SHARE": 0.4, "WORK.code_share": 0.3, "*.calls_mean": 2.0}):
        assert agentic.APPROVAL_SHARE == 0.4
        assert agentic.SPECS[agentic.WORK].code_share == 0.3
        assert agentic.SPECS[agentic.EXPLORE].calls_mean == pytest.approx(2 * explore.calls_mean)
        assert agentic.SPECS[agentic.WORK].calls_mean == pytest.approx(2 * work.calls_mean)
        raise RuntimeError("the world failed to draw")
    assert agentic.APPROVAL_SHARE == approvals
    assert agentic.SPECS[agentic.WORK] == work and agentic.SPECS[agentic.EXPLORE] == explore


def _approval_share(world: Path) -> float:
    texts = pl.read_parquet(world / "invocations" / "*.parquet", columns=["prompt_text"])["prompt_text"]
    return float(texts.is_in(APPROVALS).mean())


def test_a_changed_habit_changes_the_world_and_is_recorded(tmp_path: Path) -> None:
    size = {"users": 30, "weeks": 2, "seed": 7}
    generate_stressed_world(tmp_path / "as_generated", {}, **size)
    generate_stressed_world(tmp_path / "approving", {"APPROVAL_SHARE": 0.5}, **size)
    as_generated, approving = _approval_share(tmp_path / "as_generated"), _approval_share(tmp_path / "approving")
    assert approving > 2 * as_generated > 0
    meta = json.loads((tmp_path / "approving" / "labels" / "world.json").read_text())
    assert meta["habits"] == {"APPROVAL_SHARE": 0.5}
    assert "habits" not in json.loads((tmp_path / "as_generated" / "labels" / "world.json").read_text())
    assert agentic.APPROVAL_SHARE == 0.16  # restored


def test_a_chat_world_has_no_habits_to_change(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="agentic"):
        generate_stressed_world(tmp_path / "w", {"APPROVAL_SHARE": 0.5}, style="chat", users=4, weeks=1)
