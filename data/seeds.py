"""Which generated worlds may be used for what: the seed split (see docs/worlds.md).

Thresholds, weights and any other choice made by looking at results are tuned on worlds of the
TUNING_SEEDS only. The EVALUATION_SEEDS are held out: a world of one of them is generated only
to report how well the finished detectors do, never to choose anything, so the reported figures
are not fitted to the worlds they are measured on. The two sets do not overlap. (The tests and the
demo use small seeds such as 0, 3 and 7; they choose nothing, so that is no leak.)
"""

from __future__ import annotations

TUNING_SEEDS: tuple[int, ...] = tuple(range(1, 51))
"""Seeds of the worlds used to choose thresholds and settings (1 to 50)."""

EVALUATION_SEEDS: tuple[int, ...] = (101, 202, 303)
"""Seeds of the held-out worlds used only to report final figures; never to tune."""


def seed_role(seed: int) -> str:
    """'tuning', 'evaluation' or 'other' (examples, tests, the demo)."""
    if seed in EVALUATION_SEEDS:
        return "evaluation"
    if seed in TUNING_SEEDS:
        return "tuning"
    return "other"


def check_tuning_seed(seed: int) -> None:
    """Raise when a tuning procedure is about to look at a held-out world."""
    if seed in EVALUATION_SEEDS:
        raise ValueError(f"seed {seed} is an evaluation seed (held out): tune on TUNING_SEEDS only")
