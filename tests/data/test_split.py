"""data/split.py: a world split by day, and the withheld day delivered beside the history."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl

from data.split import deliver, last_day, unsplittable, withhold_days


def tiny_world(root: Path) -> Path:
    root.mkdir()
    (root / "people.csv").write_text("user_id,team\nu1,t\n")
    for dataset in ("token_usage", "invocations"):
        (root / dataset).mkdir(parents=True)
        for day in ("2026-01-05", "2026-01-06"):
            pl.DataFrame({"day": [day]}).write_parquet(root / dataset / f"{day}.parquet")
    times = [datetime(2026, 1, 5, 9), datetime(2026, 1, 6, 9), None]
    pl.DataFrame({"change_id": ["a", "b", "c"], "merged_at": times}).write_parquet(root / "changes.parquet")
    pl.DataFrame({"deployment_id": ["d", "e", "f"], "deployed_at": times}).write_parquet(root / "deployments.parquet")
    pl.DataFrame({"review_id": ["r", "s", "t"], "submitted_at": times}).write_parquet(root / "reviews.parquet")
    return root


def test_the_withheld_day_is_delivered_beside_the_history(tmp_path: Path) -> None:
    world = tiny_world(tmp_path / "world")
    day = last_day(world)
    assert day == date(2026, 1, 6)
    before, after = withhold_days(world, tmp_path / "split", {day})
    assert sorted(p.name for p in (before / "token_usage").iterdir()) == ["2026-01-05.parquet"]
    assert pl.read_parquet(before / "changes" / "history.parquet").get_column("change_id").to_list() == ["a", "c"]
    assert pl.read_parquet(after / "reviews" / "new-days.parquet").get_column("review_id").to_list() == ["s"]
    history = {p: p.stat().st_mtime_ns for p in before.rglob("*") if p.is_file()}

    added = deliver(after, before)
    assert sorted(str(p.relative_to(before)) for p in added) == [
        "changes/new-days.parquet", "deployments/new-days.parquet",
        "invocations/2026-01-06.parquet", "reviews/new-days.parquet", "token_usage/2026-01-06.parquet",
    ]
    # the history's files are untouched (a run skips them by path, size and mtime) and nothing is doubled
    assert {p: p.stat().st_mtime_ns for p in history} == history
    assert sorted(str(p.relative_to(before)) for p in before.rglob("*") if p.is_file()) == \
        sorted(str(p.relative_to(after)) for p in after.rglob("*") if p.is_file())
    assert deliver(after, before) == []


def test_a_sharded_world_says_why_it_is_not_split_by_day(tmp_path: Path) -> None:
    world = tiny_world(tmp_path / "world")
    assert unsplittable(world) is None
    # as `generate` writes a world in shards (the 100M benchmark's): DAY-kNN files, changes/kNN.parquet
    for path in (world / "token_usage").glob("*.parquet"):
        path.rename(path.with_name(f"{path.stem}-k00.parquet"))
    (world / "changes.parquet").unlink()
    (world / "changes").mkdir()
    pl.DataFrame({"change_id": ["a"], "merged_at": [datetime(2026, 1, 5, 9)]}).write_parquet(world / "changes" / "k00.parquet")
    assert unsplittable(world) == "a sharded world (token_usage, changes in shard files) is not split by day"
