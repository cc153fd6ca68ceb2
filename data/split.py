"""Split a generated world by day, as a daily export would deliver it: the history first, then
some days in files of their own (used by the incremental-run tests and the benchmark)."""
from __future__ import annotations

import os
import shutil
from collections.abc import Collection
from datetime import date
from pathlib import Path

import polars as pl

DAILY_DATASETS = ("token_usage", "invocations")  # one file per day: YYYY-MM-DD.parquet
# one file each (when the world has it), split by this column
EVENT_COLUMNS = {"changes": "merged_at", "deployments": "deployed_at", "reviews": "submitted_at"}


def withhold_days(world: Path, out: Path, days: Collection[date]) -> tuple[Path, Path]:
    """Two input folders under `out`: `before`, the world without `days`, and `after`, everything,
    the withheld days' changes, deployments and reviews in files of their own. Unchanged files are hard
    links (or copies) of the same bytes, so a run on `after` after `before` skips them."""
    before, after = out / "before", out / "after"
    for folder in (before, after):
        folder.mkdir(parents=True)
        _link(world / "people.csv", folder / "people.csv")
    for dataset in DAILY_DATASETS:
        for folder in (before, after):
            (folder / dataset).mkdir()
        for path in sorted((world / dataset).glob("*.parquet")):
            _link(path, after / dataset / path.name)
            if date.fromisoformat(path.stem) not in days:
                _link(path, before / dataset / path.name)
    for dataset, column in EVENT_COLUMNS.items():
        if not (world / f"{dataset}.parquet").exists():  # an optional dataset the world does not have
            continue
        frame = pl.read_parquet(world / f"{dataset}.parquet")
        held = pl.col(column).is_not_null() & pl.col(column).dt.date().is_in(sorted(days))
        (before / dataset).mkdir()
        (after / dataset).mkdir()
        frame.filter(~held).write_parquet(before / dataset / "history.parquet")
        _link(before / dataset / "history.parquet", after / dataset / "history.parquet")
        frame.filter(held).write_parquet(after / dataset / "new-days.parquet")
    return before, after


def deliver(after: Path, folder: Path) -> list[Path]:
    """Add to `folder` (a `before`) the files of `after` it lacks, as a daily export lands new files
    beside the old ones: the next run reads one folder, its old files unchanged. Returns them."""
    added = []
    for path in sorted(p for p in after.rglob("*") if p.is_file()):
        target = folder / path.relative_to(after)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _link(path, target)
            added.append(target)
    return added


def unsplittable(world: Path) -> str | None:
    """Why `world` cannot be split by day (None when it can): a sharded world (`generate` in
    shards, as the 100M benchmark's) has shard files where this module reads a file per day
    (YYYY-MM-DD.parquet) and one file per event dataset (changes.parquet)."""
    sharded = [name for name in DAILY_DATASETS
               if any(not _is_day(path.stem) for path in (world / name).glob("*.parquet"))]
    sharded += [name for name in EVENT_COLUMNS if (world / name).is_dir()]
    return f"a sharded world ({', '.join(sharded)} in shard files) is not split by day" if sharded else None


def last_day(world: Path) -> date:
    """The newest day with token usage in a generated world."""
    return max(date.fromisoformat(path.stem) for path in (world / "token_usage").glob("*.parquet"))


def _is_day(stem: str) -> bool:
    try:
        date.fromisoformat(stem)
    except ValueError:
        return False
    return True


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy(source, target)
