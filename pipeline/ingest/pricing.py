"""Pricing: rows without cost_usd are priced at insert from the effective price table.

The effective prices are the loaded `prices` rows, and the default table (pipeline/ingest/prices.csv) for
every other model. A row keeps how its cost came about in `cost_source`: 'input' (given),
'price_table' or 'unpriced' (no price for its model: cost_usd stays NULL).
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.ingest.checks import CHECKED
from pipeline.ingest.contract import PRICES as PRICES_SPEC
from pipeline.ingest.contract import DatasetSpec
from pipeline.ingest.readers import glob_literal, sql_literal

PRICES = "__load_prices"  # the effective price table of a load (a temp table)


def create_price_table(con: duckdb.DuckDBPyConnection, default_prices: Path) -> None:
    """Effective prices: the loaded `prices` rows, and the default table for the other models."""
    columns = ", ".join(PRICES_SPEC.columns)
    types = "{" + ", ".join(f"'{f.name}': '{f.sql_type}'" for f in PRICES_SPEC.fields) + "}"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {PRICES} AS
        SELECT {columns} FROM main.prices
        UNION ALL
        SELECT DISTINCT ON (model) {columns}
        FROM read_csv({sql_literal(glob_literal(str(default_prices)))}, header = true, auto_detect = false, columns = {types})
        WHERE model NOT IN (SELECT model FROM main.prices)
        """
    )


def priced_insert_sql(spec: DatasetSpec) -> str:
    """INSERT the staging table's valid rows into the raw table, priced where cost_usd is missing."""
    priced = (
        "(c.input_tokens * p.input_per_mtok + c.output_tokens * p.output_per_mtok"
        " + c.cache_read_tokens * coalesce(p.cache_read_per_mtok, 0)"
        " + c.cache_write_tokens * coalesce(p.cache_write_per_mtok, 0)) / 1e6"
    )
    selected = [
        f"coalesce(c.cost_usd, {priced})" if column == "cost_usd"
        else "CASE WHEN c.cost_usd IS NOT NULL THEN 'input' WHEN p.model IS NOT NULL THEN 'price_table' "
             "ELSE 'unpriced' END" if column == "cost_source"
        else f"c.{column}"
        for column in spec.columns
    ]
    return (
        f"INSERT INTO main.{spec.name} ({', '.join(spec.columns)}, file_id, position) "
        f"SELECT {', '.join(selected)}, c.__file_id, c.__position "
        f"FROM {CHECKED} c LEFT JOIN {PRICES} p ON p.model = c.model WHERE c.__reason IS NULL"
    )


def count_unpriced(con: duckdb.DuckDBPyConnection, spec: DatasetSpec, files_view: str) -> int:
    """Rows of the files in `files_view` loaded without a price."""
    return con.sql(
        f"SELECT count(*) FROM main.{spec.name} t JOIN {files_view} f USING (file_id) WHERE t.cost_source = 'unpriced'"
    ).fetchall()[0][0]
