"""Benchmark worlds: sizes, sharded generation for the largest, and finding a world's files.

A 10M-token-row world takes ~5 GB of memory to generate in one call, so the 100M world is ten
10M shards: each generated on its own (its own seed, in its own process), then re-keyed into
the shared world folder with a shard prefix on every id (`k03-u0001`, `k03-s-000000001`, ...)
and on its teams and team repositories, so the shards are ten disjoint companies-within-the-
company that share the orgs and the shared repositories. Daily datasets stay one file per day
and shard; changes, deployments and people become folders of one file per shard (the contract
allows a folder for every dataset). Labels are not merged: the benchmark does not read them.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

ID_COLUMNS = {
    "token_usage": ("request_id", "user_id", "session_id"),
    "invocations": ("invocation_id", "user_id", "session_id"),
    "changes": ("change_id", "author_id"),
    "deployments": ("deployment_id",),
}
LIST_ID_COLUMNS = {"changes": ("ai_session_ids",), "deployments": ("change_ids",)}
REPO_DATASETS = ("invocations", "changes", "deployments")


@dataclass(frozen=True)
class WorldSize:
    label: str
    users: int  # per shard
    weeks: int
    shards: int = 1
    seed: int = 1
    start: str = "2026-09-07"  # a Monday; the world must end before the run's clock (future rows are rejected)

    def describe(self) -> str:
        shards = f", {self.shards} shards of users={self.users}" if self.shards > 1 else ""
        start = f" from {self.start}" if self.start != WorldSize.start else ""
        return f"users={self.users * self.shards} weeks={self.weeks} seed={self.seed}{start}{shards}"


SIZES: dict[str, WorldSize] = {
    "1M": WorldSize("1M", users=600, weeks=8),
    "10M": WorldSize("10M", users=6000, weeks=8),
    "100M": WorldSize("100M", users=6000, weeks=8, shards=10),
    # 91 days of history (13 weeks), about as many token rows as the size named: for the daily run
    # (from 2026-08-10, so they end on 2026-11-08, in the past)
    "1M-daily": WorldSize("1M-daily", users=370, weeks=13, start="2026-08-10"),
    "10M-daily": WorldSize("10M-daily", users=3700, weeks=13, start="2026-08-10"),
}


def shard_prefix(shard: int) -> str:
    return f"k{shard:02d}-"


def merge_shard(shard_dir: Path, out_dir: Path, shard: int) -> None:
    """Re-key one generated shard into `out_dir` (see the module doc), then delete the shard."""
    import polars as pl

    from data.generate import SHARED_REPOS

    prefix = shard_prefix(shard)
    tag = prefix.rstrip("-")

    def keyed(frame: pl.DataFrame, dataset: str) -> pl.DataFrame:
        columns = [pl.concat_str(pl.lit(prefix), pl.col(c)).alias(c) for c in ID_COLUMNS[dataset]]
        columns += [pl.col(c).list.eval(pl.concat_str(pl.lit(prefix), pl.element())).alias(c)
                    for c in LIST_ID_COLUMNS.get(dataset, ())]
        if dataset in REPO_DATASETS:
            columns.append(pl.when(pl.col("repo").is_in(list(SHARED_REPOS))).then(pl.col("repo"))
                           .otherwise(pl.concat_str(pl.lit(prefix), pl.col("repo"))).alias("repo"))
        return frame.with_columns(columns)

    for dataset in ("token_usage", "invocations"):
        folder = out_dir / dataset
        folder.mkdir(parents=True, exist_ok=True)
        for path in sorted((shard_dir / dataset).glob("*.parquet")):
            keyed(pl.read_parquet(path), dataset).write_parquet(folder / f"{path.stem}-{tag}.parquet")
    for dataset in ("changes", "deployments"):
        folder = out_dir / dataset
        folder.mkdir(parents=True, exist_ok=True)
        keyed(pl.read_parquet(shard_dir / f"{dataset}.parquet"), dataset).write_parquet(folder / f"{tag}.parquet")
    people = pl.read_csv(shard_dir / "people.csv")
    (out_dir / "people").mkdir(parents=True, exist_ok=True)
    people.with_columns(
        pl.concat_str(pl.lit(prefix), pl.col("user_id")).alias("user_id"),
        pl.concat_str(pl.lit(prefix), pl.col("team")).alias("team"),
    ).write_csv(out_dir / "people" / f"{tag}.csv")
    shutil.rmtree(shard_dir)


def dataset_files(input_dir: Path, dataset: str, extension: str) -> list[Path]:
    """The dataset's files of one format: `DATASET.ext` and/or `DATASET/**/*.ext`, sorted."""
    files = [input_dir / f"{dataset}.{extension}"] if (input_dir / f"{dataset}.{extension}").is_file() else []
    if (input_dir / dataset).is_dir():
        files += sorted(p for p in (input_dir / dataset).rglob(f"*.{extension}") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no {extension} files for {dataset} in {input_dir} (the benchmark reads parquet worlds)")
    return files


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
